"""The native adapters on every architecture family: the method table's behaviours (trains and loss
falls, base frozen, exact count, save/load round trip) through the run path on tiny BERT, GPT-2 and
LLaMA classifiers, and identity at initialisation on those and on T5 and BART encoder-decoders."""

import copy

import pytest
import torch
from test_methods import check_checkpoint_round_trip, check_memory_breakdown
from transformers import set_seed

from peftbench.methods import get_method
from peftbench.methods.adamix import AdapterMixture
from peftbench.methods.unipelt import Gate, GatedAdapter, GatedLoRA
from peftbench.models import architecture_config, auto_class, build_model
from peftbench.plan import arch_of
from peftbench.recipe import run

from conftest import compose_config


def adapter(d, m):
    return 2 * m * d + d + m  # down (d x m + m) and up (m x d + d)


def sparse_adapter(d, m, sparsity):
    return 2 * round((1 - sparsity) * m * d) + d + m  # each weight keeps its share; biases dense


# model -> (layers, width) from its config, parameters of all its norms, and its new head's
MODELS = {
    "tiny_bert": (
        lambda a: (a.num_hidden_layers, a.hidden_size),
        lambda L, d: (2 * L + 1) * 2 * d,
        lambda d, C: d * C + C,
    ),
    "tiny_gpt2": (lambda a: (a.n_layer, a.n_embd), lambda L, d: (2 * L + 1) * 2 * d, lambda d, C: d * C),
    # RMSNorm: a scale, no bias
    "tiny_llama": (lambda a: (a.num_hidden_layers, a.hidden_size), lambda L, d: (2 * L + 1) * d, lambda d, C: d * C),
}
# method case -> (method, overrides, count of what it adds and unfreezes, from layers, width, norms, model)
M = 4
UNIPELT = [f"method.bottleneck={M}", "method.prefix_length=3", "method.prefix_projection=false", "method.lora_r=2"]
LORA_MODULES = {
    "tiny_bert": 2,
    "tiny_gpt2": 1,
    "tiny_llama": 2,
}  # q and v are separate matrices, or GPT-2's one c_attn


def unipelt(L, d):
    return L * (adapter(d, M) + 2 * 3 * d + 4 * 2 * d)


# S4 on six layers (every transformers config takes num_hidden_layers; GPT-2 maps it to n_layer): the spindle
# groups 1-2-2-1, G1 (A, L), G2 (A, P), G3 (A, P, B), G4 (P, B, L)
S4 = ["++model.architecture.num_hidden_layers=6", *UNIPELT]
LAYER_BIASES = {
    "tiny_bert": lambda d: 7 * d + 2 * d,  # q, k, v, attention output, FFN output, two LayerNorms; FFN-in i = 2d
    "tiny_gpt2": lambda d: 7 * d + 2 * d,  # c_attn (3d), attn.c_proj, mlp.c_proj, two LayerNorms; c_fc i = 2d
    "tiny_llama": lambda d: 0,  # no biases: BitFit has nothing to train
}


def s4(d, model):
    # two serial adapters a layer; keys and values of 3 prefix tokens; LoRA r=2 on q and v (or c_attn): 4rd
    A, P, L, B = 2 * adapter(d, M), 2 * 3 * d, 4 * 2 * d, LAYER_BIASES[model](d)
    return (A + L) + 2 * (A + P) + 2 * (A + P + B) + (P + B + L)


CASES = {
    "adapter_houlsby": (
        "adapter_houlsby",
        [f"method.bottleneck={M}"],
        lambda L, d, norms, model: L * 2 * adapter(d, M) + norms,
    ),
    "adapter_pfeiffer": ("adapter_pfeiffer", [f"method.bottleneck={M}"], lambda L, d, norms, model: L * adapter(d, M)),
    # pruned by SNIP before training: 51 of each weight's 128 entries survive, after attention and FFN
    "sparse_adapter": (
        "sparse_adapter",
        [f"method.bottleneck={M}", "method.sparsity=0.6"],
        lambda L, d, norms, model: L * 2 * sparse_adapter(d, M, 0.6),
    ),
    "parallel_adapter": ("parallel_adapter", [f"method.bottleneck={M}"], lambda L, d, norms, model: L * adapter(d, M)),
    "parallel_adapter_attn": (
        "parallel_adapter",
        [f"method.bottleneck={M}", "method.places=[attn]"],
        lambda L, d, norms, model: L * adapter(d, M),
    ),
    "scaled_parallel_adapter": (
        "scaled_parallel_adapter",
        [f"method.bottleneck={M}"],
        lambda L, d, norms, model: L * adapter(d, M),
    ),
    "adapter_by_reduction_factor": (
        "adapter_pfeiffer",
        ["method.reduction_factor=8"],
        lambda L, d, norms, model: L * adapter(d, d // 8),
    ),
    # PHM projections with rank-1 fast factors: 2r(d + m) + d + m per adapter, plus the shared n^3 (n = 4)
    "compacter": (
        "compacter",
        ["method.bottleneck=8"],
        lambda L, d, norms, model: L * 2 * (2 * (d + 8) + d + 8) + 4**3,
    ),
    "compacter_pp": (
        "compacter_pp",
        ["method.bottleneck=8"],
        lambda L, d, norms, model: L * (2 * (d + 8) + d + 8) + 4**3,
    ),
    # every expert trains; two, as the toy run's 24 steps split over four leave each too few to show the loss falling
    # the parallel adapter at the FFN, and keys and values of 3 prefix tokens on every layer (no MLP)
    "mam": (
        "mam",
        [f"method.bottleneck={M}", "method.prefix_length=3", "method.prefix_projection=false"],
        lambda L, d, norms, model: L * adapter(d, M) + 2 * L * 3 * d,
    ),
    "adamix": (
        "adamix",
        [f"method.bottleneck={M}", "method.experts=2"],
        lambda L, d, norms, model: L * 2 * adapter(d, M),
    ),
    # the FFN adapter, 3 prefix tokens (no MLP), LoRA r=2 on q and v (4rd a layer; GPT-2's fused c_attn too),
    # and a gate of d + 1 on the adapter, the attention and each LoRA projection
    "unipelt": (
        "unipelt",
        UNIPELT,
        lambda L, d, norms, model: unipelt(L, d) + L * (2 + LORA_MODULES[model]) * (d + 1),
    ),
    "unipelt_nogate": ("unipelt_nogate", UNIPELT, lambda L, d, norms, model: unipelt(L, d)),
    "s4": ("s4", S4, lambda L, d, norms, model: s4(d, model)),
    "unipelt_adapter_lora": (
        "unipelt",
        [*UNIPELT, "method.parts=[adapter,lora]"],
        lambda L, d, norms, model: L * (adapter(d, M) + 4 * 2 * d) + L * (1 + LORA_MODULES[model]) * (d + 1),
    ),
}


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_adapter_trains_freezes_counts_and_round_trips(case, model, tiny_run_config):
    method, overrides, formula = CASES[case]
    cfg = tiny_run_config(method, f"model={model}", *overrides)
    output = run(cfg)
    record = output.record
    layers_and_width, norms, head = MODELS[model]
    L, d = layers_and_width(cfg.model.architecture)
    assert record["params"]["trainable"] == formula(L, d, norms(L, d), model) + head(d, 2)
    first, last = sum(output.losses[:5]) / 5, sum(output.losses[-5:]) / 5
    assert last < first, f"{case} on {model}: loss did not fall ({first:.4f} -> {last:.4f})"
    set_seed(cfg.seed)
    base = dict(build_model(cfg.model, 2)[0].named_parameters())
    for name, parameter in output.model.named_parameters():
        if (
            not parameter.requires_grad
        ):  # under its base name: wrappers add ".base", peft "base_model." and its head copy
            base_name = name.removeprefix("base_model.").replace(".base.", ".").replace(".original_module.", ".")
            assert torch.equal(parameter, base[base_name]), f"{case} on {model} changed frozen {name}"
    check_memory_breakdown(record, output.model, every_parameter_stepped=method != "adamix")
    check_checkpoint_round_trip(cfg, record, output.model)
    assert record["latency"]["merged"] is None  # a non-linear adapter cannot fold into the weights


SEQ2SEQ = ("tiny_t5", "tiny_bart_lm")


def seq2seq_inputs(vocab: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    return {
        "input_ids": torch.randint(1, vocab, (2, 9), generator=generator),
        "decoder_input_ids": torch.randint(1, vocab, (2, 5), generator=generator),
    }


NOT_IDENTITY_AT_INIT = {
    "mam",
    "unipelt",
    "unipelt_nogate",
    "s4",
    "sparse_adapter",  # its up-projection starts small and random, not zero, so that SNIP has something to rank
}  # prefixes add key/value positions: attention changes from the start


@pytest.mark.parametrize("model", [*sorted(MODELS), *SEQ2SEQ])
@pytest.mark.parametrize("case", sorted(set(CASES) - NOT_IDENTITY_AT_INIT))
def test_a_fresh_adapter_is_the_identity(case, model):
    method, overrides, _ = CASES[case]
    cfg = compose_config(
        [f"+method={method}", "+task=rte", f"model={model}", "tracker=none", *overrides, "method.non_linearity=gelu"]
    )
    set_seed(0)
    base = auto_class(cfg.model).from_config(architecture_config(cfg.model, 2)).eval()  # no tokenizer needed
    vocab = base.config.vocab_size
    batch = seq2seq_inputs(vocab) if model in SEQ2SEQ else {"input_ids": torch.randint(1, vocab, (2, 9))}
    with torch.no_grad():
        before = base(**batch).logits
        method_cfg = get_method(method).make_config({k: v for k, v in cfg.method.items() if k not in ("name", "lr")})
        adapted = get_method(method).apply(base, method_cfg, arch_of(cfg.model)).eval()
        after = adapted(**batch).logits
    wrapped = [m for m in adapted.modules() if type(m).__name__ in ("SerialAdapter", "ParallelAdapter")]
    a = cfg.model.architecture
    layers = (
        a.get("num_layers", 0)
        + a.get("num_decoder_layers", 0)
        + a.get("encoder_layers", 0)
        + a.get("decoder_layers", 0)
    )
    assert len(wrapped) >= (layers or 2)  # on every layer (T5, BART: encoder and decoder stacks)
    assert torch.allclose(before, after, atol=1e-5)


def test_adamix_inference_is_one_averaged_adapter():
    set_seed(0)
    mixture = AdapterMixture(width=16, bottleneck=4, experts=3, non_linearity="relu", scale=1.0)
    with torch.no_grad():
        for parameter in mixture.parameters():
            parameter.normal_()
    x = torch.randn(2, 5, 16)
    mixture.train()
    routed = {tuple(mixture(x).flatten()[:3].tolist()) for _ in range(20)}
    assert len(routed) > 1  # training passes take different experts
    mixture.eval()
    single = mixture.average()
    assert torch.allclose(single.down.weight, torch.stack([e.weight for e in mixture.down]).mean(0))
    assert torch.allclose(single.up.bias, torch.stack([e.bias for e in mixture.up]).mean(0))
    assert torch.allclose(mixture(x), single(x))
    # what evaluation runs is that one adapter: a single adapter's parameters, computed once
    assert sum(p.numel() for p in mixture.averaged.parameters()) == adapter(16, 4)
    cached = mixture.averaged
    mixture(x)
    assert mixture.averaged is cached
    mixture.train()
    assert mixture.averaged is None  # training moves the experts: the average is rebuilt next time


def unipelt_gates(model) -> dict[str, list[Gate]]:
    """Every gate of a UniPELT model, by the part it scales."""
    gates = {"lora": [], "adapter": [], "prefix": []}
    for module in model.modules():
        if isinstance(module, GatedLoRA):
            gates["lora"].append(module.gate)
        elif isinstance(module, GatedAdapter):
            gates["adapter"].append(module.gate)
        elif hasattr(module, "prefix_gate"):
            gates["prefix"].append(module.prefix_gate)
    return gates


@pytest.mark.parametrize("model", sorted(MODELS))
def test_unipelt_gates_scale_each_part(model):
    """Gates held at 1 give what the NoGate ablation gives with the same weights; moving any one part's
    gate away from 1 changes the output, so each gate reaches what it gates (the prefix gate included)."""
    cfg = compose_config(["+method=unipelt", "+task=rte", f"model={model}", "tracker=none", *UNIPELT])
    set_seed(0)
    base = auto_class(cfg.model).from_config(architecture_config(cfg.model, 2)).eval()
    batch = {"input_ids": torch.randint(1, base.config.vocab_size, (2, 9))}
    options = {k: v for k, v in cfg.method.items() if k not in ("name", "lr", "gates")}
    gated, ungated = (
        get_method(name).apply(copy.deepcopy(base), get_method(name).make_config(options), arch_of(cfg.model)).eval()
        for name in ("unipelt", "unipelt_nogate")
    )
    gates = unipelt_gates(gated)
    layers = cfg.model.architecture.get("num_hidden_layers") or cfg.model.architecture.get("n_layer")
    assert [len(gates[part]) for part in ("adapter", "prefix", "lora")] == [
        layers,
        layers,
        LORA_MODULES[model] * layers,
    ]
    with torch.no_grad():
        for parameter in gated.parameters():
            if parameter.requires_grad:
                parameter.normal_(0, 0.3)  # LoRA's B and the adapters' up leave zero: every part acts
        for gate in (g for part in gates.values() for g in part):
            gate.linear.weight.zero_()
            gate.linear.bias.fill_(50.0)  # sigmoid(50) is 1.0 in float32
        shared = {k: v for k, v in gated.state_dict().items() if k in ungated.state_dict()}
        assert not ungated.load_state_dict(shared, strict=False).missing_keys
        reference = ungated(**batch).logits
        assert torch.allclose(gated(**batch).logits, reference, atol=1e-6)
        for part, part_gates in gates.items():
            part_gates[0].linear.bias.fill_(0.0)  # this gate now gives 0.5
            assert not torch.allclose(gated(**batch).logits, reference, atol=1e-4), f"the {part} gate has no effect"
            part_gates[0].linear.bias.fill_(50.0)


def test_unipelt_records_its_trained_gates(tiny_run_config):
    output = run(tiny_run_config("unipelt", *UNIPELT))
    state, gates = output.record["method_state"], unipelt_gates(output.model)
    assert state["gated"] and set(state["gates"]) == {"adapter", "prefix", "lora"}
    for part, part_gates in gates.items():
        assert len(state["gates"][part]) == len(part_gates) > 0
        assert 0 < state["mean_gate"][part] < 1
        # they trained: every bias started at zero
        assert all(g.linear.bias.requires_grad and g.linear.bias.item() != 0 for g in part_gates)
        assert all(0 < value < 1 for value in state["gates"][part].values())
    ungated = run(tiny_run_config("unipelt_nogate", *UNIPELT)).record["method_state"]
    assert not ungated["gated"] and ungated["gates"] == {}
