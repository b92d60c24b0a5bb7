"""GraLoRA (Jung et al. 2025) through the peft library: the target matrix is split into a k x k grid,
each block with its own LoRA pair of rank r/k; as many parameters as LoRA of rank r, r(in + out)."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class GraloraConfig:
    r: int = 32  # total rank: r x (in + out) per matrix; k must divide r, in and out, so r is no size knob
    alpha: float = 64
    k: int = 2  # grid size; peft advises 4 from r = 64
    hybrid_r: int = 0  # rank of a plain LoRA pair added beside the grid
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_gralora(model: nn.Module, cfg: GraloraConfig, arch: Arch) -> nn.Module:
    peft_config = peft.GraloraConfig(
        r=cfg.r,
        alpha=cfg.alpha,
        gralora_k=cfg.k,
        hybrid_r=cfg.hybrid_r,
        gralora_dropout=cfg.dropout,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    return peft.get_peft_model(model, peft_config)


register_method(Method("gralora", GraloraConfig, apply_gralora, family="reparametrised", merge=merge_and_unload))
