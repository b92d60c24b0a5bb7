"""One test body per behaviour, the methods as rows: training works, frozen weights stay frozen, and
the trainable count equals the method's exact formula."""

import pytest
import torch

from peftbench.methods import METHODS
from peftbench.models import build_model
from peftbench.recipe import run
from transformers import set_seed


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
