"""AdaMSS (adaptive multi-subspaces, Zheng et al. 2025) through the peft library: each target weight (its bias as an
extra column) is reduced to its top-r SVD space; its output rows are clustered by K-Means into K subspaces,
and each subspace i trains a low-rank update B_i A_i (A_i: r_i x r, B_i: rows_i x r_i, B zero at start).
peft's adaptive subspace allocation (ASA, pruning subspaces during training) is not wired here.

On the meta device (budgets, the count tool) there are no weights to cluster: the rows are dealt to the K
subspaces in turn instead. At subspace_rank 1 the count, K x r + out per matrix, does not depend on which rows a
subspace holds, so it is exact whenever K-Means finds K non-empty clusters (peft's own count assumes so too)."""

from contextlib import contextmanager
from dataclasses import dataclass, field

import peft
import peft.tuners.adamss.layer as adamss_layer
import torch
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class AdamssConfig:
    r: int = 100  # the SVD rank every subspace's A acts in
    num_subspaces: int = 5  # K, the K-Means clusters of each weight's rows
    subspace_rank: int = 1  # r_i: at 1, K x r + out parameters per matrix, whatever the clustering
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])
    seed: int = 0  # the randomised SVD's seed (the clustering's is fixed by peft)


def rows_in_turn(vectors: torch.Tensor, num_subspaces: int, iternum: int) -> tuple[torch.Tensor, int]:
    """peft's clustering_Z for a meta tensor, which K-Means cannot read: row i joins subspace i mod K."""
    clusters = min(num_subspaces, vectors.shape[0])
    return torch.arange(vectors.shape[0]) % clusters, clusters


@contextmanager
def clustering_for(model: nn.Module):
    """K-Means on real weights; rows dealt in turn on the meta device."""
    if not next(model.parameters()).is_meta:
        yield
        return
    kmeans = adamss_layer.clustering_Z
    adamss_layer.clustering_Z = rows_in_turn
    try:
        yield
    finally:
        adamss_layer.clustering_Z = kmeans


def apply_adamss(model: nn.Module, cfg: AdamssConfig, arch: Arch) -> nn.Module:
    peft_config = peft.AdamssConfig(
        r=cfg.r,
        num_subspaces=cfg.num_subspaces,
        subspace_rank=cfg.subspace_rank,
        random_seed=cfg.seed,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    with clustering_for(model):
        return peft.get_peft_model(model, peft_config)


register_method(
    Method(
        "adamss",
        AdamssConfig,
        apply_adamss,
        family="reparametrised",
        # no size_knob: its count, K x r + out per matrix, has two factors (r bounded by the narrowest weight)
        merge=merge_and_unload,
        linear_targets_only=True,  # peft's AdaMSS wraps only nn.Linear, not GPT-2's Conv1D
    )
)
