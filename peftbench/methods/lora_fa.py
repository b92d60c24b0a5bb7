"""LoRA-FA (Zhang et al. 2023, "LoRA-FA: Memory-efficient Low-rank Adaptation for Large Language Models
Fine-tuning"): LoRA with A frozen at its random initialisation, so only B (and the head) train, through peft's
create_lorafa_optimizer (AdamW whose B gradient is projected through (A A^T)^-1 / scaling^2, the form of the
paper's later version)."""

from dataclasses import dataclass

import peft.optimizers
import torch
import torch.nn as nn

from peftbench.methods.lora import LoraConfig, apply_lora, initialize_from_data, merge_lora
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class LoraFAConfig(LoraConfig):
    pass


def freeze_a(model: nn.Module) -> None:
    for name, parameter in model.named_parameters():
        if "lora_A" in name:
            parameter.requires_grad_(False)


def apply_lora_fa(model: nn.Module, cfg: LoraFAConfig, arch: Arch) -> nn.Module:
    model = apply_lora(model, cfg, arch)
    freeze_a(model)  # here, not first in the optimizer, so that counts and budgets see it
    model.lora_fa_config = cfg  # read when the optimizer is made
    return model


def initialize_and_freeze_a(model: nn.Module, total_steps: int, train_loader) -> None:
    initialize_from_data(model, total_steps, train_loader)  # init=eva (A in new tensors), init=corda
    freeze_a(model)


def lora_fa_optimizer(model: nn.Module, trainer) -> torch.optim.Optimizer:
    cfg = model.lora_fa_config
    return peft.optimizers.create_lorafa_optimizer(
        model, r=cfg.r, lora_alpha=cfg.alpha, lr=trainer.lr, weight_decay=trainer.weight_decay
    )


register_method(
    Method(
        "lora_fa",
        LoraFAConfig,
        apply_lora_fa,
        family="reparametrised",
        size_knob="r",
        merge=merge_lora,
        on_train_start=initialize_and_freeze_a,
        make_optimizer=lora_fa_optimizer,
    )
)
