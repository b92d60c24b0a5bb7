"""Behaviour particular to the peft-library methods beyond the shared method table."""

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
import torch
from transformers import set_seed

from peftbench.budget import exact_counts
from peftbench.methods import METHODS, cpt, get_method
from peftbench.plan import apply_method, build_base, plan_run
from peftbench.recipe import run
from peftbench.validate import ConfigError


def test_adalora_prunes_to_the_target_budget_unevenly(tiny_run_config):
    cfg = tiny_run_config(
        "adalora",
        "method.init_r=6",
        "method.target_r=2",
        "method.tinit=2",
        "method.tfinal=6",
        "method.deltaT=2",
        "trainer.epochs=4",
        "method.target_modules=[q,k,v,attn_out,ffn_in,ffn_out]",
    )
    state = run(cfg).record["method_state"]
    matrices = 2 * 6  # six roles in each of two layers
    assert len(state["ranks"]) == matrices
    assert state["total_rank"] == sum(state["ranks"].values()) == 2 * matrices  # target_r x matrices
    assert len(set(state["ranks"].values())) > 1, state["ranks"]  # allocated by importance, not uniformly


def test_adalora_needs_room_for_its_schedule(tiny_run_config):
    with pytest.raises(
        ValueError, match=r"AdaLoRA needs more training steps \(24\) than tinit \+ tfinal \(20 \+ 10\)"
    ):
        run(tiny_run_config("adalora", "method.tinit=20", "method.tfinal=10"))


@pytest.mark.parametrize("target_r", [12, 13, 0])
def test_adalora_refuses_a_final_rank_not_below_its_initial_rank_before_any_work(target_r, tiny_run_config):
    from peftbench.validate import validate

    with pytest.raises(
        ConfigError,
        match=f"AdaLoRA prunes each matrix from method.init_r=12 to an average of method.target_r={target_r}: "
        "target_r must be at least 1 and below init_r.",
    ):
        validate(tiny_run_config("adalora", f"method.target_r={target_r}"))


def test_a_method_refuses_a_model_type_it_cannot_serve(tiny_run_config):
    with pytest.raises(
        ValueError, match="Method 'prefix_tuning' cannot serve model type 'deberta-v2'; it supports: bert, roberta"
    ):
        run(tiny_run_config("prefix_tuning", "model=deberta_v3_base"))


# peft wraps only nn.Linear for these (OFT, BOFT, HRA, RoAd, C3A, SHiRA, DeLoRA, MiSS, Lily, AdaMSS, OSF, PEANuT,
# GLoRA, PSOFT, Super-Tuning)
LINEAR_ONLY_METHODS = sorted(name for name, m in METHODS.items() if m.linear_targets_only)
# A model type outside peftbench's table of model types, with nn.Linear projections: the tiny LLaMA's numbers as a
# Qwen3 (its q/k/v/o and gated-FFN modules have LLaMA's names; q and k also get an RMSNorm each)
TINY_QWEN3 = [
    "model=tiny_llama",
    "model.name=tiny_qwen3",
    "model.architecture.model_type=qwen3",
    "+model.architecture.head_dim=16",
]


def method_case_overrides(method: str) -> list[str]:
    """The method table's first row of small sizes for the method (tests/test_methods.py)."""
    from test_methods import CASES

    return next(list(overrides) for name, overrides, *_ in CASES.values() if name == method)


@pytest.mark.parametrize("method", LINEAR_ONLY_METHODS)
def test_a_method_without_conv1d_support_refuses_gpt2_first(method, tiny_run_config):
    """GPT-2's Conv1D projections are refused in one sentence, before a model is built."""
    with pytest.raises(
        ValueError,
        match=f"^Method '{method}' cannot serve model type 'gpt2'; it wraps only torch.nn.Linear projections, "
        "and those of gpt2, openai-gpt, imagegpt, .* are transformers' Conv1D.$",
    ):
        run(tiny_run_config(method, "model=tiny_gpt2"))


@pytest.mark.parametrize("method", LINEAR_ONLY_METHODS)
def test_a_method_without_conv1d_support_serves_a_linear_model_type_outside_the_table(method, tiny_run_config):
    """What is refused is a Conv1D model type, not every type but a list: a Qwen3 passes validation and peft wraps
    its nn.Linear targets."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    from peftbench.validate import validate

    cfg = tiny_run_config(method, *TINY_QWEN3, *method_case_overrides(method))
    validate(cfg)
    plan = plan_run(cfg)
    base = build_base(plan)[0]
    assert base.config.model_type == "qwen3"
    wrapped = [m for m in apply_method(base, plan).modules() if isinstance(m, BaseTunerLayer)]
    assert wrapped and all(type(m.get_base_layer()) is torch.nn.Linear for m in wrapped)


def test_oft_trains_a_qwen3(tiny_run_config):
    output = run(tiny_run_config("oft", *TINY_QWEN3, "method.block_size=8", "trainer.epochs=1"))
    assert output.record["status"] == "ok"
    assert output.record["config"]["model"]["architecture"]["model_type"] == "qwen3"


@pytest.mark.parametrize("model, model_type", [("tiny_gpt2", "gpt2"), ("tiny_llama", "llama")])
def test_beft_refuses_projections_without_a_bias_first(model, model_type, tiny_run_config):
    """BEFT merges its trained bias into the layer's own: GPT-2 (Conv1D) and LLaMA (no bias) are refused."""
    with pytest.raises(ValueError, match=f"^Method 'beft' cannot serve model type '{model_type}'; it supports: bert,"):
        run(tiny_run_config("beft", f"model={model}"))


def test_adaption_prompt_refuses_an_encoder_first(tiny_run_config):
    with pytest.raises(
        ValueError,
        match="^Method 'adaption_prompt' cannot serve model type 'bert'; it supports: llama, mistral, gpt2.",
    ):
        run(tiny_run_config("adaption_prompt"))


@pytest.mark.parametrize(
    "model, message",
    [
        ("tiny_bert", "cannot serve model type 'bert'; it supports: gpt2, llama."),
        ("tiny_llama", "cannot serve a sequence_classification model; it supports: causal_lm."),
    ],
)
def test_cpt_refuses_an_encoder_and_a_classifier_first(model, message, tiny_run_config):
    cfg = tiny_run_config("cpt", f"model={model}")
    with pytest.raises(ConfigError, match=f"^Method 'cpt' {re.escape(message)}$"):
        run(cfg)
    (refusal,) = [json.loads(path.read_text()) for path in Path(cfg.results_dir).rglob("*.json")]
    assert refusal["status"] == "failed" and refusal["error"]["type"] == "ConfigError"  # before any work


def test_cpt_context_is_the_first_training_examples_and_only_their_inputs_move(tiny_run_config, monkeypatch):
    """The context is the last 40 tokens of the first training examples the run reads (padding dropped),
    typed input (4i + 2) or label (4i + 4) by the example's own labels, and ends on a label; after training
    only the input tokens have moved, each within the projection ball."""
    read = []

    def reading(model, total_steps, loader):
        class Recorded:
            def __iter__(self):
                for batch in loader:
                    read.append(batch)
                    yield batch

        return cpt.build_context(model, total_steps, Recorded())

    monkeypatch.setitem(METHODS, "cpt", dataclasses.replace(METHODS["cpt"], on_train_start=reading))
    cfg = tiny_run_config("cpt", "model=tiny_llama_lm", "method.context_tokens=40", "method.input_epsilon=20")
    output = run(cfg)
    params = output.record["params"]
    assert exact_counts(cfg) == (params["trainable"], params["total"]) == (40 * 32, params["total"])  # meta device
    assert len(read) == 1  # the first batch of 8 holds 40 tokens
    ids, types, examples = [], [], 0
    for row_ids, mask, labels in zip(read[0]["input_ids"], read[0]["attention_mask"], read[0]["labels"]):
        ids += row_ids[mask.bool()].tolist()
        types += [4 * examples + (4 if label != -100 else 2) for label in labels[mask.bool()].tolist()]
        examples += 1
        if len(ids) >= 40:
            break
    config = output.model.peft_config["default"]
    assert (config.cpt_token_ids, config.cpt_tokens_type_mask) == (ids[-40:], types[-40:])
    assert config.cpt_tokens_type_mask[-1] % 4 == 0 and 2 in {t % 4 for t in config.cpt_tokens_type_mask}
    state = output.record["method_state"]
    assert state == {
        "examples": examples,
        "input_tokens": sum(t % 4 == 2 for t in types[-40:]),
        "label_tokens": sum(t % 4 == 0 for t in types[-40:]),
    }

    encoder = output.model.prompt_encoder["default"]
    moved = encoder.get_projection().norm(dim=1)
    is_input = torch.tensor(config.cpt_tokens_type_mask) % 4 == 2
    assert (moved[~is_input] == 0).all() and (moved[is_input] > 0).all()
    assert (moved <= 20 * (32 / 2048) ** 0.5 + 1e-6).all()  # input_epsilon x sqrt(width / 2048)


def test_every_method_declares_its_family_and_merge():
    for method in METHODS.values():
        assert method.family in ("baseline", "additive", "selective", "reparametrised", "hybrid")
    assert {name for name, m in METHODS.items() if m.mergeable} == {
        "adalora",
        "bitfit",
        "dora",
        "ia3",
        "loha",
        "lokr",
        "lora",
        "lora_fa",
        "lora_plus",
        "qlora",
        "qlora_8bit",
        "rslora",
        "vera",
        "diff_pruning",
        "far",
        "fishmask",
        "intrinsic_said",
        "oft",
        "boft",
        "hra",
        "road",
        "ln_tuning",
        "fourierft",
        "vblora",
        "randlora",
        "c3a",
        "shira",
        "delora",
        "miss",
        "gralora",
        "hira",
        "trainable_tokens",
        "pvera",
        "unilora",
        "tinylora",
        "waveft",
        "adamss",
        "osf",
        "peanut",
        "deft",
        "glora",
        "psoft",
        "beft",
        "supertuning",
        "frod",
    }
    assert {name for name, m in METHODS.items() if m.family == "selective"} == {
        "bitfit",
        "diff_pruning",
        "far",
        "fishmask",
        "ln_tuning",
        "shira",
        "trainable_tokens",
        "beft",
        "supertuning",
    }


def test_prompt_tuning_starts_from_a_text(tiny_run_config):
    output = run(
        tiny_run_config(
            "prompt_tuning",
            "method.init=text",
            "method.init_text='is it entailed?'",
            "method.num_virtual_tokens=4",
            "trainer.max_steps=1",
        )
    )
    assert output.record["status"] == "ok"


def test_prompt_tuning_text_init_needs_a_text(tiny_run_config):
    with pytest.raises(ValueError, match="Prompt-tuning init 'text' needs method.init_text"):
        run(tiny_run_config("prompt_tuning", "method.init=text"))


@pytest.mark.parametrize(("model", "bits"), [("tiny_bert", 4), ("tiny_bert", 8), ("tiny_gpt2", 4)])
def test_loftq_quantizes_the_base_and_fits_ba_to_what_quantization_lost(model, bits, tiny_run_config):
    from peft.tuners.lora import LoraLayer

    from peftbench.methods.lora import quantized_and_back

    cfg = tiny_run_config("lora", f"model={model}", "method.init=loftq", f"method.loftq_bits={bits}")
    plan = plan_run(cfg)
    set_seed(cfg.seed)
    original = {name: p.detach().clone() for name, p in build_base(plan)[0].named_parameters()}
    set_seed(cfg.seed)
    tuned = apply_method(build_base(plan)[0], plan)
    layers = {name: m for name, m in tuned.named_modules() if isinstance(m, LoraLayer)}
    assert layers
    for name, layer in layers.items():
        base = layer.get_base_layer()
        weight = original[name.removeprefix("base_model.model.") + ".weight"]
        quantized = base.weight
        if model == "tiny_gpt2":  # Conv1D keeps its weight as in x out; LoftQ works on out x in
            weight, quantized = weight.T, quantized.T
        assert torch.equal(quantized, quantized_and_back(weight, bits))  # one round: Q of the original W
        delta = layer.scaling["default"] * layer.lora_B["default"].weight @ layer.lora_A["default"].weight
        assert torch.linalg.norm(weight - quantized - delta) < 0.9 * torch.linalg.norm(weight - quantized)


def test_unknown_lora_init_names_the_choices(tiny_run_config):
    with pytest.raises(
        ValueError,
        match="Unknown LoRA init 'svd'; valid: default, gaussian, orthogonal, pissa, pissa_niter_<n>, olora, eva, "
        "loftq, corda",
    ):
        run(tiny_run_config("lora", "method.init=svd"))


def toy_batches(vocab_size: int) -> list[dict]:
    """Two classification batches of four sequences, padded at the end to the longest."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for lengths in ([7, 5, 9, 3], [6, 8, 4, 8]):
        ids = torch.randint(5, vocab_size, (4, max(lengths)), generator=generator)
        mask = (torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None]).long()
        batches.append({"input_ids": ids * mask, "attention_mask": mask, "labels": torch.tensor([0, 1, 0, 1])})
    return batches


@torch.no_grad()
def input_covariances(model, names: list[str], batches: list[dict]) -> dict[str, torch.Tensor]:
    """CorDA's C for each named linear layer: the mean over examples (each alone, without its padding) of X^T X,
    X the layer's inputs divided by their maximum (peft's hook)."""
    sums, counts = dict.fromkeys(names, 0), dict.fromkeys(names, 0)

    def hook(name):
        def add(module, args, output):
            x = args[0][0].float()
            x = x / x.max().abs()
            sums[name] = sums[name] + x.T @ x
            counts[name] += 1

        return add

    handles = [model.get_submodule(name).register_forward_hook(hook(name)) for name in names]
    for batch in batches:
        for ids, mask in zip(batch["input_ids"], batch["attention_mask"].bool()):
            model(input_ids=ids[mask][None], attention_mask=mask[mask][None].long())
    for handle in handles:
        handle.remove()
    return {name: sums[name] / counts[name] for name in names}


def corda_delta(weight: torch.Tensor, covariance: torch.Tensor, r: int, mode: str) -> torch.Tensor:
    """The r components of W C (top for ipm, smallest for kpm) mapped back through C^-1, C damped by
    0.01 x its mean diagonal (doubled until it inverts well, as peft)."""
    damp, eye = 0.01, torch.eye(len(covariance))
    while True:
        damped = covariance + eye * covariance.diag().mean() * damp
        inverse = torch.linalg.inv(damped)
        if torch.dist(damped @ inverse, eye) < 0.05:
            break
        damp *= 2
    U, S, Vh = torch.linalg.svd(weight @ damped, full_matrices=False)
    kept = slice(0, r) if mode == "ipm" else slice(len(S) - r, len(S))
    return U[:, kept] @ torch.diag(S[kept]) @ Vh[kept] @ inverse


@pytest.mark.parametrize(("model", "mode"), [("tiny_bert", "ipm"), ("tiny_bert", "kpm"), ("tiny_gpt2", "ipm")])
def test_corda_moves_the_components_of_w_c_into_the_adapter(model, mode, tiny_run_config):
    """After on_train_start: the residual base plus scaling B A is the original W, and scaling B A is the
    top (ipm) or smallest (kpm) r components of W C, computed here from the batches' input covariance C."""
    from peft.tuners.lora import LoraLayer

    cfg = tiny_run_config("lora", f"model={model}", "method.init=corda", f"method.corda_mode={mode}", "method.r=4")
    plan = plan_run(cfg)
    set_seed(cfg.seed)
    original = build_base(plan)[0].eval()
    set_seed(cfg.seed)
    tuned = apply_method(build_base(plan)[0], plan)
    batches = toy_batches(cfg.model.architecture.vocab_size)
    get_method("lora").on_train_start(tuned, 1, batches)

    assert tuned.peft_config["default"].init_lora_weights == "corda"  # what peft's save converts
    layers = {
        name.removeprefix("base_model.model."): m for name, m in tuned.named_modules() if isinstance(m, LoraLayer)
    }
    covariances = input_covariances(original, list(layers), batches)
    for name, layer in layers.items():
        weight, residual = original.get_submodule(name).weight, layer.get_base_layer().weight
        if model == "tiny_gpt2":  # Conv1D keeps its weight as in x out; CorDA works on out x in
            weight, residual = weight.T, residual.T
        delta = layer.scaling["default"] * layer.lora_B["default"].weight @ layer.lora_A["default"].weight
        torch.testing.assert_close(residual + delta, weight, rtol=1e-5, atol=1e-5)
        expected = corda_delta(weight, covariances[name], r=4, mode=mode)
        torch.testing.assert_close(delta, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


@pytest.mark.parametrize(
    ("override", "got"), [("method.corda_mode=xpm", "'xpm' and 8"), ("method.corda_batches=0", "'ipm' and 0")]
)
def test_bad_corda_options_name_the_choices(override, got, tiny_run_config):
    with pytest.raises(ValueError, match=f"CorDA needs corda_mode in ipm, kpm and corda_batches >= 1; got {got}."):
        run(tiny_run_config("lora", "method.init=corda", override))


def test_qlora_refuses_corda(tiny_run_config):
    with pytest.raises(ValueError, match="QLoRA quantizes the base itself: init=corda is for lora"):
        run(tiny_run_config("qlora", "method.init=corda"))


@pytest.mark.parametrize("method, bits", [("qlora", 4), ("qlora_8bit", 8)])
def test_qlora_quantizes_on_cpu_and_saves_weight_memory(method, bits, tiny_run_config):
    common = ["trainer.max_steps=2", "method.r=4", "method.target_modules=[q,k,v,attn_out,ffn_in,ffn_out]"]
    quantized = run(tiny_run_config(method, *common)).record
    plain = run(tiny_run_config("lora", *common)).record
    state = quantized["method_state"]
    assert state["quantization"]["bits"] == bits and state["quantization"]["skipped_modules"] == ["classifier"]
    assert ("quant_type" in state["quantization"]) == (bits == 4)  # NF4 and double quantization are 4-bit options only
    assert quantized["params"]["trainable"] == plain["params"]["trainable"]  # the same LoRA on a smaller base
    assert quantized["params"]["total"] == plain["params"]["total"]  # of as many weights, 4-bit ones unpacked
    saved = state["weight_memory_saved_bytes"]
    assert saved == state["fp32_weights_bytes"] - state["quantized_weights_bytes"] > 0
    # 4-bit packs two weights per byte (1/8 of fp32), 8-bit one (1/4)
    assert state["quantized_weights_bytes"] * (8 if bits == 4 else 4) == state["fp32_weights_bytes"]
    assert quantized["memory"]["breakdown"]["weights_bytes"] == plain["memory"]["breakdown"]["weights_bytes"] - saved


@pytest.fixture
def cpu_bf16_layout(monkeypatch):
    """bitsandbytes' AVX512-BF16 path on any CPU: every new 4-bit layer may repack its weight for CPU
    inference; counts how often a weight is repacked."""
    import bitsandbytes.nn.modules as modules

    calls = {"packed": 0}
    pack = modules._convert_weight_packed_for_cpu

    def counted_pack(*args, **kwargs):
        calls["packed"] += 1
        return pack(*args, **kwargs)

    monkeypatch.setattr(modules, "has_avx512bf16", lambda: True)
    monkeypatch.setattr(modules, "_convert_weight_packed_for_cpu", counted_pack)
    return calls


def test_qlora_trains_again_after_evaluating_in_the_cpu_bf16_layout(cpu_bf16_layout, tiny_run_config):
    """On an AVX512-BF16 CPU the evaluation between epochs repacks the weights; the next epoch, the
    latency measurement and the merge must still work."""
    wide = ["model.architecture.hidden_size=64", "model.architecture.intermediate_size=128"]  # a block of 64 fits
    record = run(
        tiny_run_config(
            "qlora",
            *wide,
            "trainer.epochs=2",
            "method.r=4",
            "method.compute_dtype=bfloat16",
            "method.target_modules=[q,k,v,attn_out,ffn_in,ffn_out]",
        )
    ).record
    assert record["status"] == "ok" and [entry["epoch"] for entry in record["metrics"]["history"]] == [1, 2]
    assert record["time"]["train_steps"] == 2 * 8 and math.isfinite(record["metrics"]["last_loss"])
    assert (
        record["method_state"]["quantization"]["cpu_bf16_packed_layers"] == 2 * 6 + 1
    )  # both layers' six, and the pooler
    assert cpu_bf16_layout["packed"] >= 2 * 13  # packed at each evaluation: the standard layout came back to train
    assert math.isfinite(record["latency"]["merged"]["median_ms"]) and math.isfinite(
        record["latency"]["merge_check"]["max_abs_diff"]
    )


def test_qlora_uses_the_cpu_layout_only_where_it_keeps_the_numbers(cpu_bf16_layout, tiny_run_config):
    """fp32 compute (the default): the bf16 CPU kernel would compute in bfloat16, so it never runs. bf16:
    only on layers whose input is a whole quantization block (tiny_bert's FFN outputs, 64 -> 32); the
    repack fails on narrower ones (32 wide)."""
    packed_layers = {}
    for dtype in ("float32", "bfloat16"):
        record = run(tiny_run_config("qlora", "trainer.epochs=2", f"method.compute_dtype={dtype}")).record
        assert record["status"] == "ok"
        packed_layers[dtype] = record["method_state"]["quantization"]["cpu_bf16_packed_layers"]
    assert packed_layers == {"float32": 0, "bfloat16": 2}


@pytest.mark.parametrize("precision, dtype", [("fp32", "torch.float32"), ("bf16", "torch.bfloat16")])
def test_qlora_computes_in_the_runs_precision_unless_told_otherwise(precision, dtype, tiny_run_config):
    record = run(tiny_run_config("qlora", "trainer.epochs=1", f"trainer.precision={precision}")).record
    assert record["status"] == "ok" and record["method_state"]["quantization"]["compute_dtype"] == dtype
    told = run(
        tiny_run_config("qlora", "trainer.epochs=1", f"trainer.precision={precision}", "method.compute_dtype=float32")
    ).record
    assert told["method_state"]["quantization"]["compute_dtype"] == "torch.float32"


def test_the_cpu_bf16_layout_is_undone_exactly_before_training():
    import bitsandbytes as bnb
    import torch

    from peftbench.methods.qlora import guard_cpu_packing, is_cpu_packed

    layer = bnb.nn.Linear4bit(128, 64, compute_dtype=torch.bfloat16, quant_type="nf4", compress_statistics=True)
    layer.weight = bnb.nn.Params4bit(
        torch.randn(64, 128), requires_grad=False, quant_type="nf4", compress_statistics=True, module=layer
    )
    layer = layer.to("cpu")
    layer.support_avx512bf16_for_cpu = True
    guard_cpu_packing(layer, torch.bfloat16)
    standard = layer.weight.data.clone()
    before = bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state).clone()
    for _ in range(3):  # evaluate, then train: every cycle returns to the same weights
        layer.eval()
        with torch.no_grad():
            layer(torch.randn(2, 128))
        assert is_cpu_packed(layer)
        layer.train()
        layer(torch.randn(2, 128, requires_grad=True)).sum().backward()
        assert not is_cpu_packed(layer) and torch.equal(layer.weight.data, standard)
    assert torch.equal(bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state), before)


def optimizer_of_the_run(method: str, cfg, monkeypatch):
    """Runs `cfg` with the method's own optimizer hook watched: the tuned model and the optimizer it trained with."""
    made = []
    registered = get_method(method)

    def watched(model, trainer):
        made.append(registered.make_optimizer(model, trainer))
        return made[-1]

    monkeypatch.setitem(METHODS, method, dataclasses.replace(registered, make_optimizer=watched))
    output = run(cfg)
    assert output.record["status"] == "ok" and len(made) == 1
    return output.model, made[0]


def test_lora_plus_trains_b_at_lr_ratio_times_a(tiny_run_config, monkeypatch):
    cfg = tiny_run_config("lora_plus", "method.r=4", "method.lr_ratio=8", "trainer.max_steps=3")
    model, optimizer = optimizer_of_the_run("lora_plus", cfg, monkeypatch)
    names = {id(p): name for name, p in model.named_parameters()}
    rate = {names[id(p)]: group["initial_lr"] for group in optimizer.param_groups for p in group["params"]}
    a_rates = {r for name, r in rate.items() if "lora_A" in name}
    b_rates = {r for name, r in rate.items() if "lora_B" in name}
    assert a_rates == {cfg.trainer.lr} and b_rates == {8 * cfg.trainer.lr}
    assert len(optimizer.state) == len(rate)  # every parameter it holds took AdamW steps


def test_lora_fa_trains_b_only_and_keeps_a_at_its_initialisation(tiny_run_config, monkeypatch):
    cfg = tiny_run_config("lora_fa", "method.r=4", "trainer.max_steps=3")
    set_seed(cfg.seed)
    initial = dict(apply_method(build_base(plan_run(cfg))[0], plan_run(cfg)).named_parameters())
    model, optimizer = optimizer_of_the_run("lora_fa", cfg, monkeypatch)
    assert type(optimizer).__name__ == "LoraFAOptimizer"
    tuned = dict(model.named_parameters())
    a_names = [name for name in tuned if "lora_A" in name]
    b_names = [name for name in tuned if "lora_B" in name]
    assert a_names and all(torch.equal(tuned[name], initial[name]) for name in a_names)
    assert all(not torch.equal(tuned[name], initial[name]) for name in b_names)


def test_lomo_takes_sgd_steps_inside_backward_and_keeps_no_gradient(tiny_run_config):
    from peftbench.train import make_optimizer

    cfg = tiny_run_config("lomo", "trainer.weight_decay=0.1", "trainer.warmup_ratio=0.5")
    plan = plan_run(cfg)
    set_seed(cfg.seed)
    model = apply_method(build_base(plan)[0], plan)
    reference = {name: p.detach().clone() for name, p in model.named_parameters()}
    batch = {
        "input_ids": torch.randint(5, 100, (4, 12)),
        "attention_mask": torch.ones(4, 12, dtype=torch.long),
        "labels": torch.tensor([0, 1, 0, 1]),
    }
    twin = apply_method(build_base(plan)[0], plan)  # the same weights, plain backward: the gradients to compare
    twin.load_state_dict(model.state_dict())
    model.eval()  # no dropout: the same forward pass in both
    twin.eval()
    twin(**batch).loss.backward()
    gradients = {name: p.grad.clone() for name, p in twin.named_parameters()}

    optimizer, scheduler = make_optimizer(model, cfg.trainer, total_steps=10, method=plan.method)
    optimizer.step()  # nothing to update yet
    scheduler.step()  # warm-up: the rate is now 1/5 of trainer.lr, and the hooks must use it
    lr = optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(cfg.trainer.lr / 5)
    model(**batch).loss.backward()
    assert all(p.grad is None for p in model.parameters())  # every update done and every gradient dropped
    optimizer.step()
    for name, p in model.named_parameters():  # LOMO's SGD: w <- w (1 - lr wd) - lr g
        expected = reference[name] * (1 - lr * 0.1) - lr * gradients[name]
        assert torch.allclose(p.detach(), expected, atol=1e-6), name
    assert optimizer.state == {} or all(not state for state in optimizer.state.values())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.grad_accum_steps=2", "cannot accumulate gradients: trainer.grad_accum_steps=2; use 1."),
        ("method.clip_grad_value=-1", "LOMO clip_grad_value -1 must be positive"),
    ],
)
def test_lomo_refuses_what_its_fused_update_cannot_do_before_any_work(override, message, tiny_run_config):
    from peftbench.validate import ConfigError, validate

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        validate(tiny_run_config("lomo", override))


def test_galore_projects_the_target_matrices_only(tiny_run_config, monkeypatch):
    cfg = tiny_run_config("galore", "method.rank=2", "trainer.max_steps=3")
    model, optimizer = optimizer_of_the_run("galore", cfg, monkeypatch)
    projected = [p for group in optimizer.param_groups if "rank" in group for p in group["params"]]
    assert {id(p) for p in projected} == {id(p) for p in model.parameters() if p.dim() == 2} - {
        id(model.bert.embeddings.word_embeddings.weight),
        id(model.bert.embeddings.position_embeddings.weight),
        id(model.bert.embeddings.token_type_embeddings.weight),
        id(model.bert.pooler.dense.weight),
        id(model.classifier.weight),
    }
    assert all(optimizer.state[p]["exp_avg"].shape[1 if p.shape[0] >= p.shape[1] else 0] == 2 for p in projected)
