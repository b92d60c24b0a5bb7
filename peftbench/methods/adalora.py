"""AdaLoRA (Zhang et al. 2023) through the peft library: SVD-shaped LoRA whose total rank is
reallocated across matrices during training by importance, down to a target budget.

The rank allocation runs in the `on_step` hook and needs the run's total step count, which the
`on_train_start` hook receives from the runner."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method

PLACEHOLDER_STEPS = 1_000_000  # peft wants a step count at construction; on_train_start sets the real one


@dataclass
class AdaLoraConfig:
    init_r: int = 12  # starting rank of every matrix
    target_r: int = 8  # average final rank: the budget is target_r x adapted matrices
    alpha: float = 32
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["q", "k", "v", "attn_out", "ffn_in", "ffn_out"])
    tinit: int = 50  # steps of warm-up before any rank is pruned; must leave room in short runs
    tfinal: int = 100  # final steps with the rank pattern fixed
    deltaT: int = 10  # steps between reallocations
    beta1: float = 0.85  # EMA of sensitivity
    beta2: float = 0.85  # EMA of uncertainty
    orth_reg_weight: float = 0.1  # weight of the orthogonality regulariser on P and Q

    def __post_init__(self):  # checked when the config is made: peft would fail only when pruning starts (step tinit)
        if not 1 <= self.target_r < self.init_r:
            raise ValueError(
                f"AdaLoRA prunes each matrix from method.init_r={self.init_r} to an average of "
                f"method.target_r={self.target_r}: target_r must be at least 1 and below init_r."
            )


def apply_adalora(model: nn.Module, cfg: AdaLoraConfig, arch: Arch) -> nn.Module:
    peft_config = peft.AdaLoraConfig(
        init_r=cfg.init_r,
        target_r=cfg.target_r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
        tinit=cfg.tinit,
        tfinal=cfg.tfinal,
        deltaT=cfg.deltaT,
        beta1=cfg.beta1,
        beta2=cfg.beta2,
        orth_reg_weight=cfg.orth_reg_weight,
        total_step=PLACEHOLDER_STEPS,
    )
    return peft.get_peft_model(model, peft_config)


def set_total_steps(model: nn.Module, total_steps: int, train_loader) -> None:
    config = model.peft_config["default"]
    if config.tinit + config.tfinal >= total_steps:
        raise ValueError(
            f"AdaLoRA needs more training steps ({total_steps}) than tinit + tfinal "
            f"({config.tinit} + {config.tfinal}); lower method.tinit and method.tfinal."
        )
    config.total_step = total_steps


def allocate_ranks(model: nn.Module, step: int, total_steps: int) -> None:
    model.base_model.update_and_allocate(step)  # reads this step's gradients: called before they are cleared


def final_ranks(model: nn.Module) -> dict:
    """The rank each adapted matrix ends with (its non-zero singular values)."""
    ranks = {
        name: int((module.lora_E["default"] != 0).sum())
        for name, module in model.named_modules()
        if hasattr(module, "lora_E") and "default" in module.lora_E
    }
    return {"ranks": ranks, "total_rank": sum(ranks.values())}


def merge_adalora(model: nn.Module) -> nn.Module:
    return model.merge_and_unload()


register_method(
    Method(
        "adalora",
        AdaLoraConfig,
        apply_adalora,
        family="reparametrised",
        size_knob="init_r",  # what trains (P, E, Q at init_r); pruning zeroes entries of E, it does not remove them
        size_knob_min=2,  # the final rank must stay below it, and is at least 1
        size_knob_followers=("target_r",),  # a budget's init_r keeps the final rank's share of it (8 of 12: 2/3)
        on_train_start=set_total_steps,
        on_step=allocate_ranks,
        report=final_ranks,
        merge=merge_adalora,
    )
)
