"""RoAd (Liao & Monz 2024) through the peft library: the outputs of each target matrix are paired and
each pair is rotated and scaled by a trained 2D rotation (an angle and a scale per pair in road_1)."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method

VARIANTS = ("road_1", "road_2", "road_4")


@dataclass
class RoadConfig:
    variant: str = (
        "road_1"  # road_1: out numbers per matrix (an angle and a scale per pair); road_2: 2 out; road_4: 4 out
    )
    group_size: int = 64  # outputs paired within groups of this size (speed only); must divide each output width
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_road(model: nn.Module, cfg: RoadConfig, arch: Arch) -> nn.Module:
    if cfg.variant not in VARIANTS:
        raise ValueError(f"Unknown RoAd variant '{cfg.variant}'; valid: {', '.join(VARIANTS)}.")
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    return peft.get_peft_model(
        model, peft.RoadConfig(variant=cfg.variant, group_size=cfg.group_size, target_modules=targets)
    )


register_method(
    Method(
        "road",
        RoadConfig,
        apply_road,
        family="reparametrised",
        merge=merge_and_unload,
        linear_targets_only=True,  # peft's RoAd wraps only nn.Linear, not GPT-2's Conv1D
    )
)
