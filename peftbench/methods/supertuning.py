"""Super-Tuning (Ilin et al. 2026) through the peft library: only a sparse support of each target weight trains, its
largest-magnitude entries (data-free, chosen before training); (1 - sparsity) x in x out entries per matrix."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class SupertuningConfig:
    sparsity: float = 0.99  # share of each target's entries that stay frozen: 0.99 trains 1%
    select_top: bool = True  # true: the largest-magnitude entries train (Super); false: the smallest (-bottom)
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_supertuning(model: nn.Module, cfg: SupertuningConfig, arch: Arch) -> nn.Module:
    peft_config = peft.SupertuningConfig(
        sparsity=cfg.sparsity,
        select_top=cfg.select_top,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    return peft.get_peft_model(model, peft_config)


register_method(
    Method(
        "supertuning",
        SupertuningConfig,
        apply_supertuning,
        family="selective",
        merge=merge_and_unload,
        linear_targets_only=True,  # peft's Super-Tuning wraps only nn.Linear, not GPT-2's Conv1D
    )
)
