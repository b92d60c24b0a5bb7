"""LoRA+ (Hayou et al. 2024, "LoRA+: Efficient Low Rank Adaptation of Large Models"): LoRA whose B matrices
learn `lr_ratio` times faster than its A matrices, through peft's create_loraplus_optimizer."""

from dataclasses import dataclass

import peft.optimizers
import torch
import torch.nn as nn

from peftbench.methods.lora import LoraConfig, apply_lora, initialize_from_data, merge_lora
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class LoraPlusConfig(LoraConfig):
    lr_ratio: float = 16  # B's learning rate / A's (the paper's default, 2^4)


def apply_lora_plus(model: nn.Module, cfg: LoraPlusConfig, arch: Arch) -> nn.Module:
    if cfg.lr_ratio <= 0:
        raise ValueError(f"LoRA+ lr_ratio {cfg.lr_ratio} is not positive.")
    model = apply_lora(model, cfg, arch)
    model.lora_plus_config = cfg  # read when the optimizer is made
    return model


def lora_plus_optimizer(model: nn.Module, trainer) -> torch.optim.Optimizer:
    """AdamW with A (and the head's weight) at trainer.lr, B (and every 1-D parameter) at lr_ratio x trainer.lr:
    peft's grouping, as the paper's code."""
    return peft.optimizers.create_loraplus_optimizer(
        model,
        torch.optim.AdamW,
        lr=trainer.lr,
        loraplus_lr_ratio=model.lora_plus_config.lr_ratio,
        loraplus_weight_decay=trainer.weight_decay,
    )


register_method(
    Method(
        "lora_plus",
        LoraPlusConfig,
        apply_lora_plus,
        family="reparametrised",
        size_knob="r",
        merge=merge_lora,
        on_train_start=initialize_from_data,
        make_optimizer=lora_plus_optimizer,
    )
)
