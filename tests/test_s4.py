"""S4 (Chen et al. 2023): the spindle grouping, each group's layers getting exactly their strategies,
prefixes on some layers only, the grouping in the record, exact counts on seq2seq models and on the
meta device at paper scale, and bad options refused in one sentence. The method table's behaviours
(trains, frozen base, exact count, round trip on BERT, GPT-2 and LLaMA) are in test_adapters.py."""

import pytest
import torch
from test_adapters import M, adapter
from test_methods import check_checkpoint_round_trip
from transformers import set_seed

from peftbench.count import count
from peftbench.methods import get_method
from peftbench.methods.adapters import SerialAdapter
from peftbench.methods.s4 import PAPER_GROUPS, layer_of, spindle_sizes
from peftbench.methods.unipelt import GatedLoRA
from peftbench.models import architecture_config, auto_class
from peftbench.plan import arch_of
from peftbench.recipe import run

from conftest import compose_config

SMALL = [f"method.bottleneck={M}", "method.prefix_length=3", "method.prefix_projection=false", "method.lora_r=2"]
SIX_LAYERS = "++model.architecture.num_hidden_layers=6"  # GPT-2 maps it to n_layer
CUSTOM = [
    "method.groups.G1=[prefix]",
    "method.groups.G2=[]",
    "method.groups.G3=[lora,bitfit]",
    "method.groups.G4=[adapter]",
]


@pytest.mark.parametrize(
    "layers, sizes",
    [
        (4, [1, 1, 1, 1]),
        (5, [1, 2, 1, 1]),
        (6, [1, 2, 2, 1]),
        (12, [2, 4, 4, 2]),
        (24, [4, 8, 8, 4]),
        (32, [5, 11, 11, 5]),
    ],
)
def test_spindle_grouping(layers, sizes):
    assert spindle_sizes(layers) == sizes


def test_the_spindle_covers_every_layer_with_smaller_outer_groups():
    for layers in range(4, 97):
        first, second, third, last = spindle_sizes(layers)
        assert first + second + third + last == layers and first == last >= 1
        assert first <= third <= second <= third + 1, layers


def tiny(model: str, *overrides: str):
    """The tiny model with six layers (T5, BART: their own 2 + 2), built without a tokenizer, and S4 on a copy."""
    task = "e2e_nlg" if model.endswith("_lm") else "rte"
    layers = [] if model in ("tiny_t5_lm", "tiny_bart_lm") else [SIX_LAYERS]
    cfg = compose_config(
        ["+method=s4", f"+task={task}", f"model={model}", "tracker=none", *layers, *SMALL, *overrides]
    )
    set_seed(0)
    base = auto_class(cfg.model).from_config(architecture_config(cfg.model, 2)).eval()
    set_seed(0)
    copy = auto_class(cfg.model).from_config(architecture_config(cfg.model, 2)).eval()
    method = get_method("s4")
    options = {k: v for k, v in cfg.method.items() if k not in ("name", "lr")}
    return base, method.apply(copy, method.make_config(options), arch_of(cfg.model)).eval()


def strategies_by_layer(model) -> dict[str, set[str]]:
    """What each layer got, read from the tuned modules and the trained tensors; fails on a trained
    tensor that belongs to no strategy."""
    found: dict[str, set[str]] = {}
    for name, module in model.named_modules():
        kinds = {"adapter": isinstance(module, SerialAdapter), "lora": isinstance(module, GatedLoRA)}
        kinds["prefix"] = getattr(module, "prefix_slot", None) is not None
        for kind in (k for k, present in kinds.items() if present):
            found.setdefault(layer_of(name), set()).add(kind)
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad or name.startswith("prefix_groups."):
            continue
        if ".adapter." in name or ".lora_" in name:
            continue
        assert name.endswith(".bias"), f"{name} trains but belongs to no strategy"
        found.setdefault(layer_of(name), set()).add("bitfit")
    return found


@pytest.mark.parametrize("assignment", [[], CUSTOM], ids=["paper", "custom"])
@pytest.mark.parametrize("model", ["tiny_bert", "tiny_gpt2", "tiny_llama", "tiny_t5_lm"])
def test_each_groups_layers_get_exactly_their_strategies(model, assignment):
    _, tuned = tiny(model, *assignment)
    layers, grouping = tuned.s4_grouping["layers"], tuned.s4_grouping["groups"]
    biased = model in ("tiny_bert", "tiny_gpt2")  # LLaMA and T5 have no biases for BitFit
    expected = {}
    for group in grouping.values():
        for index in group["layers"]:
            expected[layers[index]] = {s for s in group["strategies"] if biased or s != "bitfit"}
    found = strategies_by_layer(tuned)
    assert {layer: found.get(layer, set()) for layer in layers} == expected
    assert set(found) <= set(layers)  # nothing outside the layers (embeddings, pooler, head) trains
    if assignment == []:
        assert {g: part["strategies"] for g, part in grouping.items()} == PAPER_GROUPS


@pytest.mark.parametrize("model", ["tiny_bert", "tiny_gpt2", "tiny_llama", "tiny_t5_lm"])
def test_layers_without_prefixes_keep_the_models_own_attention(model):
    """Without prefixes G1's layer computes what the base computes (its adapters and LoRA start at zero);
    with them the next layer does not: the prefixes reach only the layers of their groups."""
    base, tuned = tiny(model)
    generator = torch.Generator().manual_seed(0)
    inputs = {"input_ids": torch.randint(1, 1000, (2, 9), generator=generator), "output_hidden_states": True}
    if model == "tiny_t5_lm":
        inputs["decoder_input_ids"] = inputs["input_ids"][:, :5]
    with torch.no_grad():
        for parameter in tuned.prefix_groups.parameters():
            parameter.normal_(0, 3.0)  # large enough that attention leans on the prefixes
        before, after = base(**inputs), tuned(**inputs)
    key = "encoder_hidden_states" if model == "tiny_t5_lm" else "hidden_states"
    torch.testing.assert_close(after[key][1], before[key][1])  # after G1's layer
    assert not torch.allclose(after[key][2], before[key][2], atol=1e-4)  # after G2's first layer


@pytest.mark.parametrize("model", ["tiny_gpt2_lm", "tiny_llama_lm"])
def test_cached_generation_matches_on_decoders(model):
    """Decoder-only models take the native prefixes too: generating with the cache (the prefixes in front
    of the cached keys at every step) gives what generating without it gives, padding included."""
    _, tuned = tiny(model)
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, 1000, (2, 7), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, :2] = 0  # left padding
    generate = {"input_ids": input_ids, "attention_mask": attention_mask, "max_new_tokens": 6, "min_new_tokens": 6}
    with torch.no_grad():
        for parameter in tuned.prefix_groups.parameters():
            parameter.normal_(0, 3.0)
        cached = tuned.generate(**generate, do_sample=False, pad_token_id=0, use_cache=True)
        assert torch.equal(cached, tuned.generate(**generate, do_sample=False, pad_token_id=0, use_cache=False))


def test_the_record_holds_the_grouping(tiny_run_config):
    """Groups 1-2-2-1 of six layers; each group's stored count is its layers' adapters, LoRA, biases and
    prefix keys and values; the prefix MLP trains but is not stored."""
    hidden = 16
    cfg = tiny_run_config(
        "s4", SIX_LAYERS, *SMALL, "method.prefix_projection=true", f"method.projection_hidden_size={hidden}"
    )
    record = run(cfg).record
    state, d, n = record["method_state"], cfg.model.architecture.hidden_size, 5  # n: layers with prefixes
    assert state["layers"] == [f"bert.encoder.layer.{i}" for i in range(6)] and "L/6" in state["rule"]
    groups = state["groups"]
    assert [groups[g]["layers"] for g in ("G1", "G2", "G3", "G4")] == [[0], [1, 2], [3, 4], [5]]
    assert {g: part["strategies"] for g, part in groups.items()} == PAPER_GROUPS
    A, P, L, B = 2 * adapter(d, M), 2 * 3 * d, 4 * 2 * d, 7 * d + 2 * d
    stored = {"G1": A + L, "G2": 2 * (A + P), "G3": 2 * (A + P + B), "G4": P + B + L}
    assert {g: part["stored_parameters"] for g, part in groups.items()} == stored
    head = 2 * d + 2
    assert record["params"]["stored_after_training"] == sum(stored.values()) + head
    mlp = 3 * d + (d * hidden + hidden) + (hidden * n * 2 * d + n * 2 * d)  # embedding and the two layers
    assert record["params"]["trainable"] == sum(stored.values()) - n * P + mlp + head


# (decoder-layer biases of the tiny model): T5 has none; BART's decoder layer has q, k, v and output of
# both attentions (8d), fc1 (i = 2d), fc2 (d) and three LayerNorms (3d)
DECODER_BIASES = {"tiny_t5_lm": lambda d: 0, "tiny_bart_lm": lambda d: 14 * d}


@pytest.mark.parametrize("model", sorted(DECODER_BIASES))
def test_s4_runs_on_seq2seq_with_exact_counts(model, tiny_run_config):
    """Four layers, one a group: the encoder's two (G1: A, L; G2: A, P), the decoder's two (G3: A, P, B;
    G4: P, B, L), whose self- and cross-attention each take an adapter, LoRA and prefixes."""
    cfg = tiny_run_config("s4", f"model={model}", *SMALL, task="e2e_nlg")
    output = run(cfg)
    record = output.record
    d = cfg.model.architecture.d_model
    a, lora, prefix, biases = adapter(d, M), 4 * 2 * d, 2 * 3 * d, DECODER_BIASES[model](d)
    layers = [2 * a + lora, 2 * a + prefix, 3 * a + 2 * prefix + biases, 2 * prefix + biases + 2 * lora]
    assert record["params"]["trainable"] == record["params"]["stored_after_training"] == sum(layers)
    groups = record["method_state"]["groups"]
    assert [groups[g]["stored_parameters"] for g in ("G1", "G2", "G3", "G4")] == layers
    assert sum(output.losses[-5:]) < sum(output.losses[:5]), f"s4 on {model}: loss did not fall"
    check_checkpoint_round_trip(cfg, record, output.model)


def paper_scale(d, groups, biases, prefixed, m=8, r=8, length=10, hidden=512):
    """(stored, trainable) S4 parameters at the default sizes; `groups`: each group's layers and attentions
    per layer; `biases`: a layer's biases; `prefixed`: how many layers of each kind of attention take prefixes."""
    a, stored = 2 * m * d + d + m, 0
    for (layers, attentions), strategies in zip(groups, PAPER_GROUPS.values()):
        parts = {"adapter": (attentions + 1) * a, "prefix": attentions * 2 * length * d, "bitfit": biases}
        parts["lora"] = attentions * 2 * r * (d + d)  # on q and v
        stored += layers * sum(parts[s] for s in strategies)
    # each kind's MLP: an embedding, d -> hidden, hidden -> n x 2d; it trains and is replaced by the n x 2 x length x d
    # numbers it computes
    mlps = sum(
        length * d + d * hidden + hidden + hidden * n * 2 * d + n * 2 * d - n * 2 * length * d for n in prefixed
    )
    return stored, stored + mlps


@pytest.mark.parametrize(
    "model, expected",
    [
        # 12 layers, 2-4-4-2; a layer's biases: 7d + i (i = 4d)
        ("bert_base", paper_scale(768, [(2, 1), (4, 1), (4, 1), (2, 1)], 11 * 768, [10])),
        # the paper's model: 12 + 12 layers, 4-8-8-4; a decoder layer has two attentions; no biases
        ("t5_base", paper_scale(768, [(4, 1), (8, 1), (8, 2), (4, 2)], 0, [8, 12, 12])),
    ],
)
def test_paper_scale_count_on_the_meta_device(model, expected):
    counts = count(compose_config(["+method=s4", f"model={model}"]))
    assert (counts["method_stored"], counts["method_params"]) == expected
    assert counts["unfrozen"] == (6 * 11 * 768 if model == "bert_base" else 0)  # BitFit's biases, G3 and G4


@pytest.mark.parametrize(
    "override, message",
    [
        ("+method.groups.G5=[lora]", "Unknown S4 group(s) G5; valid: G1, G2, G3, G4."),
        (
            "method.groups.G2=[adapter,prompt]",
            "Unknown S4 strategy prompt in group G2; valid: adapter, prefix, bitfit, lora.",
        ),
        ("method.groups.G3=lora", "S4 group G3 needs a list of strategies (e.g. [adapter, lora]), not 'lora'."),
        ("method.adapter_places=[attn,cross]", "Unknown adapter place(s) cross; valid: attn, ffn."),
    ],
)
def test_bad_options_fail_in_one_sentence_before_a_model_is_built(override, message, tiny_run_config, monkeypatch):
    monkeypatch.setattr("peftbench.recipe.build_base", lambda *_: pytest.fail("a model was built for a bad option"))
    with pytest.raises(ValueError) as error:
        run(tiny_run_config("s4", override))
    assert str(error.value) == message


def test_too_few_layers_and_other_model_types_are_refused(tiny_run_config):
    with pytest.raises(
        ValueError, match=r"^S4 groups layers into four groups and needs at least 4 layers; the model has 2\.$"
    ):
        run(tiny_run_config("s4"))
    with pytest.raises(
        ValueError, match="^Method 's4' cannot serve model type 'deberta-v2'; it supports: bert, roberta"
    ):
        run(tiny_run_config("s4", "model=deberta_v3_base"))
