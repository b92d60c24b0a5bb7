"""HRA (Yuan et al. 2024) through the peft library: each target weight is multiplied by a chain of r
trained Householder reflections (I - 2 u u^T / |u|^2), r vectors of the input width per matrix."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class HRAConfig:
    r: int = 8  # reflections per matrix: r x in parameters; even r starts exactly at the identity
    apply_gs: bool = False  # Gram-Schmidt orthogonalisation of the reflection vectors
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_hra(model: nn.Module, cfg: HRAConfig, arch: Arch) -> nn.Module:
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    return peft.get_peft_model(model, peft.HRAConfig(r=cfg.r, apply_GS=cfg.apply_gs, target_modules=targets))


register_method(
    Method(
        "hra",
        HRAConfig,
        apply_hra,
        family="reparametrised",
        size_knob="r",
        merge=merge_and_unload,
        linear_targets_only=True,  # peft's HRA wraps only nn.Linear, not GPT-2's Conv1D
    )
)
