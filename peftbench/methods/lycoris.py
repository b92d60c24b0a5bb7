"""LoHa (Hadamard product of two low-rank pairs) and LoKr (Kronecker product with a low-rank factor),
from LyCORIS, through the peft library."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class LycorisConfig:
    r: int = 8
    alpha: float = 16
    dropout: float = 0.0  # LoHa/LoKr's rank_dropout
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_loha(model: nn.Module, cfg: LycorisConfig, arch: Arch) -> nn.Module:
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    return peft.get_peft_model(
        model, peft.LoHaConfig(r=cfg.r, alpha=cfg.alpha, rank_dropout=cfg.dropout, target_modules=targets)
    )


def apply_lokr(model: nn.Module, cfg: LycorisConfig, arch: Arch) -> nn.Module:
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    return peft.get_peft_model(
        model, peft.LoKrConfig(r=cfg.r, alpha=cfg.alpha, rank_dropout=cfg.dropout, target_modules=targets)
    )


def merge(model: nn.Module) -> nn.Module:
    return model.merge_and_unload()


register_method(Method("loha", LycorisConfig, apply_loha, family="reparametrised", size_knob="r", merge=merge))
register_method(Method("lokr", LycorisConfig, apply_lokr, family="reparametrised", size_knob="r", merge=merge))
