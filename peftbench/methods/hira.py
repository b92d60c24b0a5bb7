"""HiRA (Huang et al. 2025) through the peft library: a high-rank update W0 * (B A), the Hadamard
product of the frozen weight with a trained rank-r product; r x (in + out) per matrix."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class HiraConfig:
    r: int = 32
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_hira(model: nn.Module, cfg: HiraConfig, arch: Arch) -> nn.Module:
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    return peft.get_peft_model(model, peft.HiraConfig(r=cfg.r, hira_dropout=cfg.dropout, target_modules=targets))


register_method(Method("hira", HiraConfig, apply_hira, family="reparametrised", size_knob="r", merge=merge_and_unload))
