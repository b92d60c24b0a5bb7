"""Linear probe: the encoder is frozen, only the task head trains."""

from dataclasses import dataclass

import torch.nn as nn

from peftbench.methods.modules import freeze_all
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class LinearProbeConfig:
    pass


def apply_linear_probe(model: nn.Module, cfg: LinearProbeConfig, arch: Arch) -> nn.Module:
    freeze_all(model)  # the recipe unfreezes the task head for every method
    return model


register_method(Method("linear_probe", LinearProbeConfig, apply_linear_probe, family="baseline"))
