"""Lily (Zhong et al. 2024) through the peft library: low-rank adapters interconnected across layers; each
group of stride_A consecutive layers shares a projector A (in -> r) per target, and num_B experts B (r -> out)
are shared by every layer of a target, mixed per layer by a trained router (r -> num_B)."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class LilyConfig:
    r: int = 32  # the adapters' inner width: r x (in / stride_A per layer + num_B x out per target)
    stride_A: int = 1  # consecutive layers sharing one A (per target)
    num_B: int = 2  # B experts shared by all layers of a target; the router needs at least 2
    scaling: float = 1.0  # the update's scale
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def name_within_layer(module_name: str) -> str:
    """The part of a module's name after its layer index (bert.encoder.layer.0.attention.self.query ->
    attention.self.query): peft's Lily shares A and B among the modules that match the same target name."""
    parts = module_name.split(".")
    last_index = max((n for n, part in enumerate(parts) if part.isdigit()), default=-1)
    return ".".join(parts[last_index + 1 :])


def apply_lily(model: nn.Module, cfg: LilyConfig, arch: Arch) -> nn.Module:
    targets = sorted({name_within_layer(name) for name in module_names_for_roles(model, arch, cfg.target_modules)})
    peft_config = peft.LilyConfig(
        r=cfg.r, stride_A=cfg.stride_A, num_B=cfg.num_B, scaling=cfg.scaling, target_modules=targets
    )
    return peft.get_peft_model(model, peft_config)


register_method(
    Method(
        "lily",
        LilyConfig,
        apply_lily,
        family="reparametrised",
        size_knob="r",
        # no merge: peft's Lily routes each input through its B experts, so it cannot fold them (NotImplementedError)
        linear_targets_only=True,  # peft's Lily wraps only nn.Linear, not GPT-2's Conv1D
    )
)
