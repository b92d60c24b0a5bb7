"""LoRA (Hu et al. 2021) through the peft library."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn
from transformers.pytorch_utils import Conv1D

from peftbench.methods.modules import module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class LoraConfig:
    r: int = 8
    alpha: float = 16
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_lora(model: nn.Module, cfg: LoraConfig, arch: Arch) -> nn.Module:
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    peft_config = peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        bias="none",
        # GPT-2's Conv1D stores its weight transposed (in x out)
        fan_in_fan_out=any(isinstance(model.get_submodule(name), Conv1D) for name in targets),
    )
    return peft.get_peft_model(model, peft_config)


def merge_lora(model: nn.Module) -> nn.Module:
    return model.merge_and_unload()  # W <- W + (alpha/r) B A; the plain transformers model remains


register_method(Method("lora", LoraConfig, apply_lora, family="reparametrised", size_knob="r", merge=merge_lora))
