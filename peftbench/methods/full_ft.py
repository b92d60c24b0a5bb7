"""Full fine-tuning: every parameter trains."""

from dataclasses import dataclass

import torch.nn as nn

from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class FullFTConfig:
    pass


def apply_full_ft(model: nn.Module, cfg: FullFTConfig, arch: Arch) -> nn.Module:
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return model


register_method(Method("full_ft", FullFTConfig, apply_full_ft, family="baseline"))
