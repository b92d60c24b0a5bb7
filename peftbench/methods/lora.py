"""LoRA (Hu et al. 2021) and its variants through the peft library: DoRA (weight-decomposed,
Liu et al. 2024) and rsLoRA (rank-stabilised scaling alpha/sqrt(r), Kalajdzievski 2023) as their own
names and config classes, PiSSA (principal singular vectors as the initialisation, Meng et al. 2024)
as `init`."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn
from transformers.pytorch_utils import Conv1D

from peftbench.methods.modules import module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method

INITS = ("default", "gaussian", "pissa", "olora")


@dataclass
class LoraConfig:
    r: int = 8
    alpha: float = 16
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])
    use_dora: bool = False
    use_rslora: bool = False
    init: str = "default"


@dataclass
class DoRAConfig(LoraConfig):
    use_dora: bool = True  # a trained magnitude per output unit of each target matrix; slower steps than LoRA


@dataclass
class RsLoraConfig(LoraConfig):
    use_rslora: bool = True  # scale alpha/sqrt(r) instead of alpha/r


def apply_lora(model: nn.Module, cfg: LoraConfig, arch: Arch) -> nn.Module:
    if cfg.init not in INITS:
        raise ValueError(f"Unknown LoRA init '{cfg.init}'; valid: {', '.join(INITS)}.")
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    peft_config = peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        bias="none",
        use_dora=cfg.use_dora,
        use_rslora=cfg.use_rslora,
        init_lora_weights=True if cfg.init == "default" else cfg.init,
        # GPT-2's Conv1D stores its weight transposed (in x out)
        fan_in_fan_out=any(isinstance(model.get_submodule(name), Conv1D) for name in targets),
    )
    return peft.get_peft_model(model, peft_config)


def merge_lora(model: nn.Module) -> nn.Module:
    return model.merge_and_unload()  # W <- W + (alpha/r) B A; the plain transformers model remains


for name, config_cls in (("lora", LoraConfig), ("dora", DoRAConfig), ("rslora", RsLoraConfig)):
    register_method(Method(name, config_cls, apply_lora, family="reparametrised", size_knob="r", merge=merge_lora))
