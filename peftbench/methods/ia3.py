"""(IA)^3 (Liu et al. 2022) through the peft library: learned vectors that rescale the keys, the
values and the FFN's inner activations."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class IA3Config:
    target_modules: list[str] = field(default_factory=lambda: ["k", "v", "ffn_out"])
    feedforward_modules: list[str] = field(default_factory=lambda: ["ffn_out"])  # scaled on their input side


def apply_ia3(model: nn.Module, cfg: IA3Config, arch: Arch) -> nn.Module:
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    feedforward = module_names_for_roles(model, arch, cfg.feedforward_modules)
    return peft.get_peft_model(model, peft.IA3Config(target_modules=targets, feedforward_modules=feedforward))


def merge_ia3(model: nn.Module) -> nn.Module:
    return model.merge_and_unload()  # the scaling vectors fold into the weights


register_method(Method("ia3", IA3Config, apply_ia3, family="additive", merge=merge_ia3))
