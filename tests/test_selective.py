"""Checks specific to the selective and reparametrised methods, beyond the shared method table:
DiffPruning meets its target, FishMask picks the entries of largest Fisher information, Intrinsic SAID
changes the weights only through its projected vector (against an independent reference)."""

import math
import re

import numpy as np
import pytest
import scipy.linalg
import torch
from transformers import set_seed

from peftbench import data, measure
from peftbench.methods import get_method
from peftbench.methods.intrinsic_said import walsh_hadamard
from peftbench.methods.selection import base_parameters, selection_masks
from peftbench.plan import apply_method, arch_of, build_base, plan_run
from peftbench.recipe import load_data, run


def effective_change(cfg, output) -> dict[str, torch.Tensor]:
    """Merged tuned weights minus the base's, per base parameter name."""
    set_seed(cfg.seed)
    base = build_base(plan_run(cfg))[0].state_dict()
    merged = measure.merged_copy(output.model, get_method(cfg.method.name)).state_dict()
    return {name: merged[name] - base[name] for name in base if name in merged}


def test_diff_pruning_keeps_exactly_its_target_share(tiny_run_config):
    cfg = tiny_run_config("diff_pruning", "method.target_share=0.01")
    output = run(cfg)
    state = output.record["method_state"]
    assert state["target_nonzero"] == math.floor(0.01 * state["eligible"])
    assert state["kept_nonzero"] == state["target_nonzero"]
    nonzero = sum(
        int((change != 0).sum())
        for name, change in effective_change(cfg, output).items()
        if not name.startswith("classifier")
    )
    assert 0 < nonzero <= state["kept_nonzero"]  # the deployed diff is as sparse as recorded
    assert output.record["params"]["stored_after_training"] < output.record["params"]["trainable"] / 100


def fisher_by_hand(cfg, batches) -> torch.Tensor:
    """Mean squared gradient of every base entry, on a plain copy of the base (no parametrization)."""
    set_seed(cfg.seed)
    model = build_base(plan_run(cfg))[0]
    model.eval()
    names = [name for name, _, _ in base_parameters(model, arch_of(cfg.model), ".*")]
    parameters = dict(model.named_parameters())
    total = [torch.zeros_like(parameters[n]) for n in names]
    for batch in batches:
        model.zero_grad()
        model(**batch).loss.backward()
        for t, n in zip(total, names):
            t += parameters[n].grad ** 2
    return names, [t / len(batches) for t in total]


def test_fishmask_selects_the_largest_fisher_entries(tiny_run_config):
    cfg = tiny_run_config("fishmask", "method.fisher_batches=3", "trainer.max_steps=2")
    set_seed(cfg.seed)
    model, tokenizer = build_base(plan_run(cfg))
    model = apply_method(model, plan_run(cfg))
    splits = data.load_task(cfg.task, cfg.data_dir, cfg.seed)
    train_loader, _, _ = load_data(plan_run(cfg), splits, tokenizer, torch.device("cpu"))
    batches = [batch for _, batch in zip(range(3), train_loader)]
    get_method("fishmask").on_train_start(model, 2, batches)
    masks = selection_masks(model)

    names, fisher = fisher_by_hand(cfg, batches)
    flat = torch.cat([f.flatten() for f in fisher])
    keep = math.floor(0.005 * flat.numel())
    chosen = torch.cat([masks[n].flatten() for n in names])
    assert int(chosen.sum()) == keep
    # every chosen entry's Fisher value is at least every unchosen one's (ties may go either way)
    assert flat[chosen].min() >= flat[~chosen].max() - 1e-12
    assert flat[chosen].min() > 0


@pytest.mark.parametrize("size", [2, 32, 64, 2**11])
def test_walsh_hadamard_equals_the_dense_matrix(size):
    x = torch.randn(size, dtype=torch.float64)
    expected = torch.from_numpy(scipy.linalg.hadamard(size).astype(np.float64)) @ x
    assert torch.allclose(walsh_hadamard(x), expected, atol=1e-9)


def reference_fwht(x: np.ndarray) -> np.ndarray:
    """Textbook radix-2 butterflies (an implementation independent of peftbench's radix-32 one)."""
    x = x.copy()
    h = 1
    while h < len(x):
        for start in range(0, len(x), 2 * h):
            a, b = x[start : start + h].copy(), x[start + h : start + 2 * h].copy()
            x[start : start + h], x[start + h : start + 2 * h] = a + b, a - b
        h *= 2
    return x


def reference_projection(projector) -> np.ndarray:
    """P theta, block by block, in float64: full-length transforms (no tiling shortcut), radix-2."""
    theta = projector.theta.detach().double().numpy()
    outputs = []
    for c in range(projector.blocks):
        signs = np.ones(projector.block)  # beyond theta's padded length the input is zero: any sign will do
        signs[: projector.input_size] = projector.signs[c].double().numpy()
        x = np.zeros(projector.block)
        x[: theta.size] = theta
        tiled = reference_fwht(signs * x)
        # the projector keeps Pi(k) mod d' (where the tile repeats); any k' with that residue reads the same
        y = tiled[projector.source[c].numpy()] * projector.gaussian[c].double().numpy()
        outputs.append(reference_fwht(y))
    return np.concatenate(outputs)[: projector.total]


def test_intrinsic_said_changes_weights_only_through_the_projection(tiny_run_config, monkeypatch):
    # the encoder's weights only (no embeddings), so the float64 reference stays small; small blocks
    # so that several Fastfood blocks are stacked
    monkeypatch.setattr("peftbench.methods.intrinsic_said.BLOCK_SIZE", 2**12)
    cfg = tiny_run_config("intrinsic_said", "method.dimension=50", "method.include=encoder", "trainer.max_steps=4")
    output = run(cfg)
    projector = output.model.intrinsic_said
    assert projector.blocks > 1
    tile_repeats = projector.block // projector.input_size  # each block's Pi reads every tile position equally often
    assert all((torch.bincount(row, minlength=projector.input_size) == tile_repeats).all() for row in projector.source)
    projected = reference_projection(projector)

    change = effective_change(cfg, output)
    targets = [name for name, _, _ in base_parameters(build_base(plan_run(cfg))[0], arch_of(cfg.model), "encoder")]
    assert len(targets) == projector.scales.numel()
    offset = 0
    for index, name in enumerate(targets):
        numel = change[name].numel()
        expected = projector.scales[index].item() * projected[offset : offset + numel]
        assert np.allclose(change[name].flatten().double().numpy(), expected, atol=1e-6), name
        offset += numel
    untouched = [n for n in change if n not in targets and not n.startswith("classifier")]
    assert untouched and all(not change[n].any() for n in untouched)
    assert np.abs(projected).max() > 1e-4  # the vector trained: the check is not comparing zeros


@pytest.mark.parametrize(
    "method, option, sentence",
    [
        ("far", "method.importance=loudest", "Unknown FAR importance 'loudest'; valid: gradient, magnitude, random."),
        ("bitfit", "method.biases=some", "Unknown BitFit biases 'some'; valid: all, query_ffn."),
        ("fishmask", "method.share=2", "FishMask share 2 is not in (0, 1]."),
        ("diff_pruning", "method.target_share=0", "DiffPruning target_share 0 is not in (0, 1]."),
        ("intrinsic_said", "method.dimension=10", "Intrinsic SAID dimension 10 must exceed the 39 per-tensor scales"),
    ],
)
def test_bad_options_fail_with_one_sentence(tiny_run_config, method, option, sentence):
    with pytest.raises(ValueError, match="^" + re.escape(sentence)):
        run(tiny_run_config(method, option))
