"""PEANuT (Zhong et al. 2024) through the peft library: a small trained network takes the frozen weight
itself as input and outputs its update: A (in -> r), depth hidden r x r layers each way, B (r -> out)."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class PeanutConfig:
    r: int = 32  # the network's width: r x (in + out) per matrix at depth 0
    depth: int = 0  # hidden r x r layers on each side of the bottleneck
    activation: str = "relu"  # any transformers ACT2FN key
    scaling: float = 1.0  # the update's scale
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_peanut(model: nn.Module, cfg: PeanutConfig, arch: Arch) -> nn.Module:
    peft_config = peft.PeanutConfig(
        r=cfg.r,
        depth=cfg.depth,
        act_fn=cfg.activation,
        scaling=cfg.scaling,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    return peft.get_peft_model(model, peft_config)


register_method(
    Method(
        "peanut",
        PeanutConfig,
        apply_peanut,
        family="reparametrised",
        size_knob="r",
        merge=merge_and_unload,
        linear_targets_only=True,  # peft's PEANuT wraps only nn.Linear, not GPT-2's Conv1D
    )
)
