"""Uni-LoRA (Li et al. 2025) through the peft library: every LoRA matrix entry of every target is one entry
of a single trained vector theta_d, picked by a fixed random index (regenerated from a seed): the whole
model's update has theta_d_length parameters."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class UniLoraConfig:
    r: int = 4  # rank of the LoRA matrices whose entries theta_d fills
    theta_d_length: int = 256  # the one trained vector, shared by every target: the whole count
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])
    projection_seed: int = 42  # the fixed index assignment is regenerated from this


def apply_unilora(model: nn.Module, cfg: UniLoraConfig, arch: Arch) -> nn.Module:
    peft_config = peft.UniLoraConfig(
        r=cfg.r,
        theta_d_length=cfg.theta_d_length,
        unilora_dropout=cfg.dropout,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
        proj_seed=cfg.projection_seed,
    )
    return peft.get_peft_model(model, peft_config)


register_method(
    Method(
        "unilora",
        UniLoraConfig,
        apply_unilora,
        family="reparametrised",
        size_knob="theta_d_length",
        merge=merge_and_unload,
    )
)
