"""One test body per behaviour, the methods as rows: training works, frozen weights stay frozen, and
the trainable count equals the method's exact formula."""

from pathlib import Path

import pytest
import torch
from transformers import set_seed

from peftbench import measure
from peftbench.methods import METHODS, get_method
from peftbench.models import build_model
from peftbench.recipe import apply_method, run


def tiny_dims(cfg) -> dict:
    a = cfg.model.architecture
    return {"L": a.num_hidden_layers, "d": a.hidden_size, "i": a.intermediate_size, "C": 2}


def head(d, C):
    return d * C + C  # the new classifier: weight and bias


# method -> (overrides, exact trainable count as a function of the tiny BERT's dimensions)
EXPECTED_TRAINABLE = {
    "linear_probe": ([], lambda L, d, i, C, total: head(d, C)),
    # per layer: q, k, v, attention-output, FFN-in (i), FFN-output biases and two LayerNorm biases;
    # plus the embedding LayerNorm and pooler biases, and the head
    "bitfit": ([], lambda L, d, i, C, total: L * (7 * d + i) + 2 * d + head(d, C)),
    # LoRA on q and v with rank r: A (r x d) and B (d x r) per matrix per layer, plus the head
    "lora": (["method.r=4"], lambda L, d, i, C, total: L * 2 * (2 * 4 * d) + head(d, C)),
    "full_ft": ([], lambda L, d, i, C, total: total),
}


def test_every_registered_method_has_a_row():
    assert set(EXPECTED_TRAINABLE) == set(METHODS)


@pytest.mark.parametrize("method", sorted(EXPECTED_TRAINABLE))
def test_method_trains_freezes_and_counts(method, tiny_run_config):
    overrides, formula = EXPECTED_TRAINABLE[method]
    cfg = tiny_run_config(method, *overrides)
    set_seed(cfg.seed)
    initial, _ = build_model(cfg.model, num_labels=2)  # the same initial weights the run starts from
    initial_state = {name: p.detach().clone() for name, p in initial.named_parameters()}

    output = run(cfg)
    record = output.record

    assert record["status"] == "ok"
    params = record["params"]
    assert params["trainable"] == formula(**tiny_dims(cfg), total=params["total"])
    assert params["trainable_share"] == pytest.approx(params["trainable"] / params["total"])

    losses = record["metrics"]["history"]  # evaluated each epoch
    assert len(losses) == cfg.trainer.epochs
    first, last = sum(output.losses[:5]) / 5, sum(output.losses[-5:]) / 5
    assert last < first, f"{method}: loss did not fall ({first:.4f} -> {last:.4f})"

    tuned = dict(output.model.named_parameters())
    changed, frozen_changed = 0, []
    for name, parameter in tuned.items():
        base_name = name.removeprefix("base_model.model.").replace(".base_layer.", ".")
        if base_name not in initial_state:
            assert parameter.requires_grad, f"{name} was added by {method} but is frozen"
            continue
        moved = not torch.equal(parameter.detach(), initial_state[base_name])
        changed += moved
        if not parameter.requires_grad and moved:
            frozen_changed.append(name)
    assert frozen_changed == [], f"{method} changed frozen weights: {frozen_changed[:5]}"
    assert changed > 0

    check_memory_breakdown(record)
    check_checkpoint_round_trip(cfg, record, output.model)
    check_merge(method, record)


def check_memory_breakdown(record):
    """The analytic parts are exact: fp32 weights, fp32 gradients of the trainable parameters, and
    AdamW's two fp32 moments per trainable parameter."""
    parts, params = record["memory"]["breakdown"], record["params"]
    assert parts["weights_bytes"] == 4 * params["total"]
    assert parts["gradients_bytes"] == 4 * params["trainable"]
    assert parts["optimizer_state_bytes"] == 2 * params["trainable"] * 4
    peak = record["memory"]["peak_bytes"]
    assert peak > 0 and parts["activations_and_other_bytes"] == peak - sum(v for k, v in parts.items() if k != "activations_and_other_bytes")


def check_checkpoint_round_trip(cfg, record, tuned):
    """Save, load into a fresh base with the method applied (its own tensors scrambled), same outputs."""
    path = Path(record["checkpoint"]["path"])
    assert record["checkpoint"]["bytes"] == path.stat().st_size > 4 * record["params"]["trainable"]
    set_seed(cfg.seed)  # the random tiny base is defined by its seed; a pretrained one by its files
    fresh, _ = build_model(cfg.model, num_labels=2)
    fresh = apply_method(fresh, cfg)
    with torch.no_grad():
        for parameter in fresh.parameters():
            if parameter.requires_grad:
                parameter.normal_()
    batch = measure.latency_batch(tuned, batch_size=4, seq_length=16)
    assert not torch.equal(measure.outputs(fresh, batch, torch.device("cpu")), measure.outputs(tuned, batch, torch.device("cpu")))
    measure.load_checkpoint(fresh, path)
    assert torch.equal(measure.outputs(fresh, batch, torch.device("cpu")), measure.outputs(tuned, batch, torch.device("cpu")))


def check_merge(method, record):
    latency = record["latency"]
    for key in ("base", "method"):
        assert latency[key]["median_ms"] > 0 and latency[key]["p90_ms"] >= latency[key]["median_ms"]
    if get_method(method).mergeable:
        assert latency["merge_check"]["equivalent"], latency["merge_check"]
        assert latency["merge_check"]["max_abs_diff"] <= 1e-4 and latency["merged"]["median_ms"] > 0
    else:
        assert latency["merged"] is None and "no weights to merge" in latency["merge_check"]["reason"]


def test_lora_merge_removes_the_adapter_modules(tiny_run_config):
    output = run(tiny_run_config("lora", "trainer.max_steps=3"))
    merged = measure.merged_copy(output.model, get_method("lora"))
    assert not any("lora_" in name for name, _ in merged.named_parameters())
    assert any("lora_" in name for name, _ in output.model.named_parameters())  # the tuned model is untouched
