"""SparseAdapter (He, Ding, Dong, Zhang and Tao 2022, "SparseAdapter: An Easy Approach for Improving the
Parameter-Efficiency of Adapters"): bottleneck adapters pruned at initialisation, before training, and then
trained with the pruned entries held at zero. Placement, bottleneck and non-linearity are those of
adapters.py (`place_adapters`); only the two projections differ.

- Pruning is per weight matrix: each keeps exactly round((1 - sparsity) x its entries), the highest by
  saliency (a stable sort: ties go to the lower flat index); biases stay dense. The official code can
  do this (its `mask_scope=local`) but defaults to one threshold over all adapters (`global`); per
  matrix, the counts are exact before any data is seen (budgets and the meta-device count need that).
  Its `--sparsity` is the share kept (its help: "the non-zero rate"); here `sparsity` is the share pruned.
- Saliency: `snip` (Lee et al. 2019) is |w x g|, g the gradient of the task loss at the initial weight
  summed over `saliency_batches` training batches, dropout off (the official code takes it as the
  gradient of a mask at 1, which is the same number); `magnitude` is |w|; `random` a draw from the
  run's seeded generator.
- Initialisation: both projections from N(0, init_std^2), biases zero; 0.02 is the official GLUE
  script's (`--ffn_adapter_init_option bert`). adapters.py starts the up-projection at zero (a fresh
  adapter is exactly the identity), which leaves nothing to rank: every up entry has |w| = |w x g| = 0,
  and with up = 0 no gradient reaches the down-projection either. Small random weights on both sides
  keep the start near the identity (Houlsby et al. 2019 draw theirs near zero for that reason) while
  giving SNIP and magnitude real scores.
- Held at zero by construction: only the surviving entries exist as trainable numbers (`values`),
  scattered into a zero weight on each forward, so a pruned entry has no gradient, no optimizer state
  and nothing to drift. The official code multiplies a dense weight by a mask; under AdamW the steps
  are the same (a masked entry's gradient, moments and update stay zero), but the optimizer here holds
  only the survivors, and the checkpoint only them with the boolean mask. (FishMask's EntrySelection
  does not fit: it selects entries of a frozen base weight and counts them as unfrozen base weights.)
- Large-Sparse: the bottleneck m is widened to round(m / (1 - sparsity)), so that each pruned weight
  keeps about as many entries as a dense adapter of bottleneck m has (exactly where m / (1 - sparsity)
  is whole); the widened down-projection's biases are the only extra numbers."""

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from peftbench.methods.adapters import NON_LINEARITIES, AdapterConfig, BottleneckAdapter, place_adapters
from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.selection import summed_gradients

SALIENCIES = ("snip", "magnitude", "random")


@dataclass
class SparseAdapterConfig(AdapterConfig):
    sparsity: float = 0.5  # share of each adapter weight matrix pruned at initialisation, in [0, 1)
    saliency: str = "snip"  # snip | magnitude | random: what decides which entries survive
    saliency_batches: int = 8  # training batches SNIP's gradients are summed over
    large_sparse: bool = False  # widen the bottleneck to round(bottleneck / (1 - sparsity))
    init_std: float = 0.02  # both projections start from N(0, init_std^2): near the identity, yet rankable

    def __post_init__(self):  # checked when the config is made: a bad value fails before the model is built
        if self.saliency not in SALIENCIES:
            raise ValueError(f"Unknown SparseAdapter saliency '{self.saliency}'; valid: {', '.join(SALIENCIES)}.")
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"SparseAdapter sparsity {self.sparsity} is not in [0, 1).")
        if not self.init_std > 0:
            raise ValueError(
                f"SparseAdapter init_std {self.init_std} must be positive: zero weights have no saliency."
            )
        if self.saliency_batches < 1:
            raise ValueError(f"SparseAdapter saliency_batches {self.saliency_batches} must be at least 1.")


def kept_entries(sparsity: float, numel: int) -> int:
    return round((1 - sparsity) * numel)


def widened(bottleneck: int, sparsity: float) -> int:
    return round(bottleneck / (1 - sparsity))


class PrunedLinear(nn.Module):
    """x -> x W^T + b, W zero outside `mask` and the trainable `values` inside it (in the flattened
    weight's order). Until `prune` sets the mask it holds the first entries (sizes are exact from the
    start) and `initial`, the dense draw that saliency scores and pruning picks from."""

    def __init__(self, in_features: int, out_features: int, sparsity: float, init_std: float):
        super().__init__()
        initial = torch.empty(out_features, in_features).normal_(0.0, init_std)
        self.register_buffer("initial", initial, persistent=False)
        self.register_buffer("mask", torch.zeros_like(initial, dtype=torch.bool))
        self.values = nn.Parameter(torch.empty(0))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scoring = False  # True: compute with the dense initial weight (for SNIP's gradients)
        self.keep(torch.arange(kept_entries(sparsity, initial.numel())))

    def keep(self, indices: torch.Tensor) -> None:
        """The initial weight's entries at `indices` (into the flattened weight) survive; the rest are zero."""
        self.mask.zero_()
        self.mask.view(-1)[indices.to(self.mask.device)] = True
        self.values.data = self.initial[self.mask].clone()

    def prune(self, indices: torch.Tensor) -> None:
        self.keep(indices)
        self.initial = None  # the dense draw is no longer needed

    @property
    def weight(self) -> torch.Tensor:
        return self.values.new_zeros(self.mask.shape).masked_scatter(self.mask, self.values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.initial if self.scoring else self.weight, self.bias)


class SparseBottleneckAdapter(nn.Module):
    """x -> s * up(f(down(x))), both projections pruned."""

    def __init__(self, width: int, bottleneck: int, cfg: SparseAdapterConfig):
        super().__init__()
        self.down = PrunedLinear(width, bottleneck, cfg.sparsity, cfg.init_std)
        self.non_linearity = NON_LINEARITIES[cfg.non_linearity]()
        self.up = PrunedLinear(bottleneck, width, cfg.sparsity, cfg.init_std)
        self.scale = cfg.scale

    forward = BottleneckAdapter.forward


def apply_sparse_adapters(model: nn.Module, cfg: SparseAdapterConfig, arch: Arch) -> nn.Module:
    def make_adapter(width: int, bottleneck: int) -> SparseBottleneckAdapter:
        inner = widened(bottleneck, cfg.sparsity) if cfg.large_sparse else bottleneck
        return SparseBottleneckAdapter(width, inner, cfg)

    model = place_adapters(model, cfg, arch, make_adapter)
    model.sparse_adapter_config = cfg  # read by the pruning before training
    return model


def pruned_layers(model: nn.Module) -> list[PrunedLinear]:
    return [module for module in model.modules() if isinstance(module, PrunedLinear)]


@contextmanager
def dense_initial_weights(layers: list[PrunedLinear]):
    for layer in layers:
        layer.scoring = True
    try:
        yield
    finally:
        for layer in layers:
            layer.scoring = False


def saliency_scores(model: nn.Module, layers: list[PrunedLinear], cfg: SparseAdapterConfig, train_loader):
    """One score per entry of each layer's initial weight."""
    initial = [layer.initial for layer in layers]
    if cfg.saliency == "random":
        return [torch.rand_like(weight) for weight in initial]
    if cfg.saliency == "magnitude":
        return [weight.abs() for weight in initial]
    batches = (batch for _, batch in zip(range(cfg.saliency_batches), train_loader))
    with dense_initial_weights(layers):
        gradients, _ = summed_gradients(model, initial, batches, of=lambda gradient: gradient)
    return [(weight * gradient).abs() for weight, gradient in zip(initial, gradients)]


def prune_at_start(model: nn.Module, total_steps: int, train_loader) -> None:
    """Before training: every adapter weight keeps its highest-saliency entries, exactly its share."""
    layers = pruned_layers(model)
    for layer, scores in zip(layers, saliency_scores(model, layers, model.sparse_adapter_config, train_loader)):
        ranked = torch.sort(scores.flatten(), descending=True, stable=True).indices
        layer.prune(ranked[: layer.values.numel()])


def sparse_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What restores the tuned model on its base: the trained tensors (surviving entries, biases, head)
    and each pruned weight's mask."""
    state = {name: p for name, p in model.named_parameters() if p.requires_grad}
    masks = {f"{name}.mask": m.mask for name, m in model.named_modules() if isinstance(m, PrunedLinear)}
    return state | masks


def pruning_report(model: nn.Module) -> dict:
    cfg, layers = model.sparse_adapter_config, pruned_layers(model)
    return {
        "trained": f"adapter weight entries kept by {cfg.saliency} saliency at initialisation; biases dense",
        "bottleneck": layers[0].mask.shape[0],  # the first adapter's down-projection: widened by large_sparse
        "kept": sum(layer.values.numel() for layer in layers),
        "eligible": sum(layer.mask.numel() for layer in layers),
    }


register_method(
    Method(
        "sparse_adapter",
        SparseAdapterConfig,
        apply_sparse_adapters,
        family="additive",
        size_knob="bottleneck",
        on_train_start=prune_at_start,
        saved_state=sparse_state,
        report=pruning_report,
    )
)
