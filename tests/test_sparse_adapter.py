"""SparseAdapter beyond the method tables: each adapter weight keeps exactly its share, the pruned entries
stay zero through training, SNIP keeps the entries of largest |w x g| (against a computation by hand on a
plain copy), Large-Sparse widens the bottleneck so that as many weight entries survive as a dense adapter has, bad
options fail in one sentence."""

import copy
import re

import pytest
import torch
import torch.nn as nn
from transformers import set_seed

from peftbench import data
from peftbench.count import count
from peftbench.methods import get_method
from peftbench.methods.adapters import set_module
from peftbench.methods.sparse_adapter import PrunedLinear
from peftbench.plan import apply_method, build_base, plan_run
from peftbench.recipe import load_data, run

from conftest import compose_config

METHOD = get_method("sparse_adapter")


def adapted(cfg):
    """The tiny model with the sparse adapters on, not yet pruned, and its first three training batches."""
    set_seed(cfg.seed)
    model, tokenizer = build_base(plan_run(cfg))
    model = apply_method(model, plan_run(cfg))
    train_loader, _, _ = load_data(
        plan_run(cfg), data.load_task(cfg.task, cfg.data_dir, cfg.seed), tokenizer, torch.device("cpu")
    )
    return model, [batch for _, batch in zip(range(3), train_loader)]


def pruned(model) -> dict[str, PrunedLinear]:
    return {name: module for name, module in model.named_modules() if isinstance(module, PrunedLinear)}


@pytest.mark.parametrize("saliency", ["snip", "magnitude", "random"])
def test_each_weight_keeps_exactly_its_share_and_every_bias(saliency, tiny_run_config):
    cfg = tiny_run_config(
        "sparse_adapter", "method.bottleneck=4", "method.sparsity=0.7", f"method.saliency={saliency}"
    )
    model, batches = adapted(cfg)
    initial = {name: layer.initial.clone() for name, layer in pruned(model).items()}
    METHOD.on_train_start(model, 1, batches)
    layers = pruned(model)
    assert len(layers) == 2 * 2 * 2  # down and up, after attention and FFN, in both layers
    for name, layer in layers.items():
        kept = round(0.3 * layer.mask.numel())  # 4 x 32 = 128 entries: 38 survive
        assert int(layer.mask.sum()) == layer.values.numel() == kept == 38, name
        assert torch.equal(layer.weight[layer.mask], initial[name][layer.mask])  # survivors keep their draw
        assert not layer.weight[~layer.mask].any()
        assert layer.bias.requires_grad and layer.bias.numel() == layer.mask.shape[0]
        assert layer.initial is None  # the dense draw is dropped once pruned


def test_pruned_entries_stay_zero_through_training(tiny_run_config):
    cfg = tiny_run_config(
        "sparse_adapter",
        "method.bottleneck=4",
        "method.sparsity=0.7",
        "method.saliency=magnitude",
        "trainer.max_steps=4",
    )
    tuned = pruned(run(cfg).model)
    set_seed(cfg.seed)  # the same draw, pruned by the same magnitudes: the masks the run started from
    start = apply_method(build_base(plan_run(cfg))[0], plan_run(cfg))
    METHOD.on_train_start(start, 4, [])
    start = pruned(start)
    moved = 0
    for name, layer in tuned.items():
        assert torch.equal(layer.mask, start[name].mask), name
        weight = layer.weight.detach()
        assert not weight[~layer.mask].any(), f"{name}: a pruned entry moved"
        moved += int((weight[layer.mask] != start[name].weight[layer.mask]).sum())
    assert moved > 0  # the survivors trained


def snip_by_hand(model, batches) -> dict[str, torch.Tensor]:
    """|w x sum of dL/dw| per entry, on a copy whose sparse layers are plain dense nn.Linear of the initial draw."""
    plain = copy.deepcopy(model).eval()
    for parameter in plain.parameters():
        parameter.requires_grad_(False)
    dense = {}
    for name, layer in pruned(plain).items():
        linear = nn.Linear(layer.mask.shape[1], layer.mask.shape[0])
        linear.weight = nn.Parameter(layer.initial.clone())
        linear.bias = nn.Parameter(layer.bias.detach().clone(), requires_grad=False)
        set_module(plain, name, linear)
        dense[name] = linear.weight
    total = {name: torch.zeros_like(w) for name, w in dense.items()}
    for batch in batches:
        for w in dense.values():
            w.grad = None
        plain(**batch).loss.backward()
        for name, w in dense.items():
            total[name] += w.grad
    return {name: (w.detach() * total[name]).abs() for name, w in dense.items()}


def test_snip_keeps_the_entries_of_largest_w_times_gradient(tiny_run_config):
    cfg = tiny_run_config("sparse_adapter", "method.bottleneck=4", "method.sparsity=0.6", "method.saliency_batches=3")
    model, batches = adapted(cfg)
    scores = snip_by_hand(model, batches)
    magnitudes = {name: layer.initial.abs() for name, layer in pruned(model).items()}
    METHOD.on_train_start(model, 1, batches)
    differs_from_magnitude = False
    for name, layer in pruned(model).items():
        score, mask = scores[name], layer.mask
        assert int(mask.sum()) == round(0.4 * mask.numel())
        assert score[mask].min() > 0, f"{name}: a kept entry has no saliency (a zero init would give this)"
        assert score[mask].min() >= score[~mask].max() * (1 - 1e-6), f"{name}: not the top |w x g|"
        top_by_magnitude = magnitudes[name].flatten().argsort(descending=True, stable=True)[: int(mask.sum())]
        differs_from_magnitude |= not mask.flatten()[top_by_magnitude].all()
    assert differs_from_magnitude  # the gradient decides, not the weights alone


def test_ties_are_broken_by_position(tiny_run_config):
    cfg = tiny_run_config("sparse_adapter", "method.bottleneck=4", "method.sparsity=0.5", "method.saliency=magnitude")
    model, _ = adapted(cfg)
    for layer in pruned(model).values():
        layer.initial.fill_(0.01)  # every entry ties
    METHOD.on_train_start(model, 1, [])
    for layer in pruned(model).values():
        kept = layer.mask.flatten().nonzero().flatten()
        assert torch.equal(kept, torch.arange(layer.mask.numel() // 2))  # the first half of the flattened weight


@pytest.mark.parametrize("sparsity, wide", [(0.5, 8), (0.75, 16)])
def test_large_sparse_widens_the_bottleneck_to_keep_a_dense_adapters_weights(sparsity, wide, tiny_run_config):
    options = ["method.bottleneck=4", f"method.sparsity={sparsity}"]
    cfg = tiny_run_config("sparse_adapter", *options, "method.large_sparse=true", "method.saliency=random")
    model, _ = adapted(cfg)
    METHOD.on_train_start(model, 1, [])
    layers = pruned(model)
    d = 32
    for name, layer in layers.items():
        assert layer.mask.shape == ((wide, d) if name.endswith("down") else (d, wide))
        assert layer.values.numel() == 4 * d  # what a dense bottleneck-4 weight holds
    assert METHOD.report(model)["bottleneck"] == wide

    large = count(compose_config(["+method=sparse_adapter", "model=tiny_bert", *options, "method.large_sparse=true"]))
    houlsby = ["+method=adapter_houlsby", "model=tiny_bert", "method.bottleneck=4", "method.train_layer_norms=false"]
    dense = count(compose_config(houlsby))
    adapters = len(layers) // 2
    # the same surviving weight entries; only the widened down-projection's extra biases differ
    assert large["method_stored"] == large["method_params"] == dense["method_params"] + adapters * (wide - 4)


def test_a_fresh_sparse_adapter_is_near_the_identity_but_not_exactly(tiny_run_config):
    cfg = tiny_run_config("sparse_adapter", "method.bottleneck=4")
    set_seed(cfg.seed)
    base = build_base(plan_run(cfg))[0].eval()
    batch = {"input_ids": torch.randint(1, base.config.vocab_size, (2, 9))}
    with torch.no_grad():
        before = base(**batch).logits
        after = apply_method(copy.deepcopy(base), plan_run(cfg)).eval()(**batch).logits
    difference = (after - before).abs().max().item()
    assert 0 < difference < 1e-2 * before.abs().max().item()


@pytest.mark.parametrize(
    "option, sentence",
    [
        ("method.saliency=fisher", "Unknown SparseAdapter saliency 'fisher'; valid: snip, magnitude, random."),
        ("method.sparsity=1.0", "SparseAdapter sparsity 1.0 is not in [0, 1)."),
        ("method.sparsity=-0.1", "SparseAdapter sparsity -0.1 is not in [0, 1)."),
        ("method.init_std=0", "SparseAdapter init_std 0 must be positive: zero weights have no saliency."),
        ("method.saliency_batches=0", "SparseAdapter saliency_batches 0 must be at least 1."),
    ],
)
def test_bad_options_fail_in_one_sentence(option, sentence, tiny_run_config):
    with pytest.raises(ValueError, match="^" + re.escape(sentence) + "$"):
        run(tiny_run_config("sparse_adapter", option))
