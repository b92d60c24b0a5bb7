"""VeRA (Kopiczko et al. 2024) through the peft library: one pair of frozen random low-rank matrices
shared by all layers (regenerated from a seed), with trained scaling vectors per layer."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class VeraConfig:
    r: int = 256
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])
    projection_seed: int = 0  # the frozen shared projections are regenerated from this


def apply_vera(model: nn.Module, cfg: VeraConfig, arch: Arch) -> nn.Module:
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    peft_config = peft.VeraConfig(
        r=cfg.r,
        vera_dropout=cfg.dropout,
        target_modules=targets,
        projection_prng_key=cfg.projection_seed,
        save_projection=False,
    )
    return peft.get_peft_model(model, peft_config)


def merge_vera(model: nn.Module) -> nn.Module:
    return model.merge_and_unload()


register_method(Method("vera", VeraConfig, apply_vera, family="reparametrised", size_knob="r", merge=merge_vera))
