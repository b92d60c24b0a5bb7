"""RandLoRA (Albert et al. 2025) through the peft library: a full-rank update as a sum of min(in, out)/r
frozen random rank-r bases shared by all layers (regenerated from a seed), each scaled by two trained
diagonal matrices. Fewer parameters at a higher r: min(in, out)/r x (r + min(in, out)) per matrix."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class RandLoraConfig:
    r: int = 32  # rank of each random basis; the count falls as r grows, so it is no size knob
    alpha: float = 640  # scaling; peft advises 20 x r
    dropout: float = 0.0
    sparse: bool = False  # sparse random bases (entries -1, 0, 1)
    very_sparse: bool = False
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])
    projection_seed: int = 0  # the frozen shared bases are regenerated from this


def apply_randlora(model: nn.Module, cfg: RandLoraConfig, arch: Arch) -> nn.Module:
    peft_config = peft.RandLoraConfig(
        r=cfg.r,
        randlora_alpha=cfg.alpha,
        randlora_dropout=cfg.dropout,
        sparse=cfg.sparse,
        very_sparse=cfg.very_sparse,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
        projection_prng_key=cfg.projection_seed,
        save_projection=False,
    )
    return peft.get_peft_model(model, peft_config)


register_method(Method("randlora", RandLoraConfig, apply_randlora, family="reparametrised", merge=merge_and_unload))
