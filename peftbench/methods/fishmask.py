"""FishMask (Sung et al. 2021, "Training Neural Networks with Fixed Sparse Masks"): update only the
entries of the base weights with the largest empirical Fisher information, estimated before training
as the mean squared gradient of the task loss over a few training batches."""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from peftbench.methods.modules import freeze_all
from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.selection import (
    EntrySelection,
    base_parameters,
    merge_parametrizations,
    parametrized,
    selection_state,
    summed_gradients,
)


@dataclass
class FishMaskConfig:
    share: float = 0.005  # share of the base's parameters that train (Sung et al.: 0.5% on GLUE)
    fisher_batches: int = 16  # training batches the squared gradients are averaged over
    include: str = ".*"  # regular expression over base parameter names that may be selected


def apply_fishmask(model: nn.Module, cfg: FishMaskConfig, arch: Arch) -> nn.Module:
    if not 0 < cfg.share <= 1:
        raise ValueError(f"FishMask share {cfg.share} is not in (0, 1].")
    freeze_all(model)
    for _, module, attribute in base_parameters(model, arch, cfg.include):
        parametrize.register_parametrization(module, attribute, EntrySelection(getattr(module, attribute)))
    # the exact count is known now (counting and budgets need no data); which entries, only before training
    selections = parametrized(model, EntrySelection)
    sizes = [original.numel() for _, _, original in selections]
    for (_, selection, original), count in zip(selections, proportional(entries_kept(cfg.share, sizes), sizes)):
        selection.reserve(original, count)
    model.fishmask_config = cfg  # read by the mask selection before training
    return model


def entries_kept(share: float, sizes: list[int]) -> int:
    return max(1, math.floor(share * sum(sizes)))


def proportional(count: int, sizes: list[int]) -> list[int]:
    """`count` split over tensors in proportion to their sizes (largest remainders get the rest)."""
    total = sum(sizes)
    parts = [count * size // total for size in sizes]
    by_remainder = sorted(range(len(sizes)), key=lambda i: -(count * sizes[i] % total))
    for i in by_remainder[: count - sum(parts)]:
        parts[i] += 1
    return parts


def empirical_fisher(model: nn.Module, originals: list[torch.Tensor], batches) -> list[torch.Tensor]:
    """Mean squared gradient of the task loss for each tensor, over the given batches (dropout off)."""
    sums, count = summed_gradients(model, originals, batches, of=torch.square)
    return [total / max(count, 1) for total in sums]


def select_by_fisher(model: nn.Module, total_steps: int, train_loader) -> None:
    """Before training: keep the top `share` of all eligible entries by Fisher information, exactly."""
    cfg = model.fishmask_config
    selections = parametrized(model, EntrySelection)
    originals = [original for _, _, original in selections]
    for _, selection, original in selections:  # release the reserved entries: their gradients must reach the base
        selection.select(original, torch.zeros(0, dtype=torch.long))
    fisher = empirical_fisher(model, originals, (batch for _, batch in zip(range(cfg.fisher_batches), train_loader)))
    keep = entries_kept(cfg.share, [t.numel() for t in originals])
    chosen = torch.topk(torch.cat([f.flatten() for f in fisher]), keep).indices.sort().values
    offset = 0
    for _, selection, original in selections:
        inside = chosen[(chosen >= offset) & (chosen < offset + original.numel())]
        selection.select(original, inside - offset)
        offset += original.numel()


def mask_report(model: nn.Module) -> dict:
    selections = parametrized(model, EntrySelection)
    per_tensor = {name: s.indices.numel() for name, s, _ in selections if s.indices.numel()}
    eligible = sum(original.numel() for _, _, original in selections)
    return {
        "trained": "entries of the base weights with the largest empirical Fisher information",
        "selected": sum(per_tensor.values()),
        "eligible": eligible,
        "selected_per_tensor": per_tensor,
    }


register_method(
    Method(
        "fishmask",
        FishMaskConfig,
        apply_fishmask,
        family="selective",
        on_train_start=select_by_fisher,
        report=mask_report,
        saved_state=selection_state,
        merge=merge_parametrizations,
    )
)
