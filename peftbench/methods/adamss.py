"""AdaMSS (adaptive multi-subspaces, Zheng et al. 2025) through the peft library: each target weight (its bias as an
extra column) is reduced to its top-r SVD space; its output rows are clustered by K-Means into K subspaces,
and each subspace i trains a low-rank update B_i A_i (A_i: r_i x r, B_i: rows_i x r_i, B zero at start).
peft's adaptive subspace allocation (ASA, pruning subspaces during training) is not wired here."""

from dataclasses import dataclass, field

import peft
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


def apply_adamss(model: nn.Module, cfg: AdamssConfig, arch: Arch) -> nn.Module:
    peft_config = peft.AdamssConfig(
        r=cfg.r,
        num_subspaces=cfg.num_subspaces,
        subspace_rank=cfg.subspace_rank,
        random_seed=cfg.seed,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    return peft.get_peft_model(model, peft_config)


register_method(
    Method(
        "adamss",
        AdamssConfig,
        apply_adamss,
        family="reparametrised",
        # no size_knob: peft initialises it from each weight's SVD, which the meta-device count cannot run
        merge=merge_and_unload,
        linear_targets_only=True,  # peft's AdaMSS wraps only nn.Linear, not GPT-2's Conv1D
    )
)
