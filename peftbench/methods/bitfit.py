"""BitFit (Ben Zaken et al. 2022): only bias terms (and the task head) train."""

from dataclasses import dataclass

import torch.nn as nn

from peftbench.methods.modules import freeze_all
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class BitFitConfig:
    pass


def apply_bitfit(model: nn.Module, cfg: BitFitConfig, arch: Arch) -> nn.Module:
    freeze_all(model)
    for name, parameter in model.named_parameters():
        if name.endswith("bias"):
            parameter.requires_grad_(True)
    return model


def merge_bitfit(model: nn.Module) -> nn.Module:
    return model  # the trained biases are the base model's own: nothing to fold, no inference overhead


register_method(Method("bitfit", BitFitConfig, apply_bitfit, family="selective", merge=merge_bitfit))
