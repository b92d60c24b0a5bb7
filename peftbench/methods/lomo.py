"""LOMO (Lv et al. 2023, "Full Parameter Fine-tuning for Large Language Models with Limited Resources"): full
fine-tuning with plain SGD whose update is fused into the backward pass. Each parameter is updated as soon as
the backward pass has its gradient, and the gradient is dropped, so neither the whole model's gradients nor any
optimizer state are held: a low-memory full fine-tuning baseline beside GaLore. The paper's own optimizer
(`lomo-optim`, which transformers' Trainer uses for optim="lomo").

Its update runs inside `loss.backward()`. Lomo's hooks fire before a gradient is accumulated, so they apply the
gradients that arrived before; a hook after each accumulation applies the rest (the package leaves the last
parameter's, the word embeddings', for its `fused_backward`), so nothing is left when backward returns. The
run's learning-rate schedule reaches the hooks through the optimizer's param groups. Gradient-norm clipping
needs LOMO's second backward pass, which this wrapper does not take: `clip_grad_value` clips each gradient's
entries instead, and the trainer's `max_grad_norm` finds no gradient left to clip."""

from dataclasses import dataclass

import torch
import torch.nn as nn

from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class LomoConfig:
    clip_grad_value: float | None = None  # clip every gradient entry to [-v, v] before its update; None: no clipping

    def __post_init__(self):  # checked when the config is validated, before any work
        if self.clip_grad_value is not None and self.clip_grad_value <= 0:
            raise ValueError(f"LOMO clip_grad_value {self.clip_grad_value} must be positive (or null for none).")


def apply_lomo(model: nn.Module, cfg: LomoConfig, arch: Arch) -> nn.Module:
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    model.lomo_config = cfg  # read when the optimizer is made
    return model


def lomo_optimizer(model: nn.Module, trainer) -> torch.optim.Optimizer:
    from lomo_optim import Lomo

    class ScheduledLomo(Lomo):
        """Lomo under the run's schedule (its learning rate is the param groups', which the schedule sets), with
        every update done by the time backward returns."""

        updates_during_backward = True  # one parameter's gradient at a time (measure.memory_breakdown)

        def __init__(self, model: nn.Module, **options):
            super().__init__(model, **options)
            for parameter in model.parameters():
                if parameter.requires_grad:
                    parameter.register_post_accumulate_grad_hook(self.apply_arrived)

        def apply_arrived(self, parameter: torch.Tensor) -> None:
            self.grad_func(0)  # updates every parameter whose gradient is there, and drops the gradient

        @property
        def lr(self) -> float:
            return self.param_groups[0]["lr"] if hasattr(self, "param_groups") else self.initial_lr

        @lr.setter
        def lr(self, value: float) -> None:  # Lomo.__init__ sets it before the param groups exist
            self.initial_lr = value

        def step(self, closure=None):
            return None  # every update happened during backward

    cfg = model.lomo_config
    return ScheduledLomo(model, lr=trainer.lr, clip_grad_value=cfg.clip_grad_value, weight_decay=trainer.weight_decay)


def check_lomo_trainer(trainer) -> None:
    if trainer.grad_accum_steps != 1:
        raise ValueError(
            f"LOMO updates every parameter inside the backward pass, so it cannot accumulate gradients: "
            f"trainer.grad_accum_steps={trainer.grad_accum_steps}; use 1."
        )
    if trainer.get("precision", "fp32") == "fp16":
        raise ValueError("LOMO cannot train under fp16 loss scaling (trainer.precision=fp16); use fp32 or bf16.")


register_method(
    Method(
        "lomo",
        LomoConfig,
        apply_lomo,
        family="baseline",
        make_optimizer=lomo_optimizer,
        check_trainer=check_lomo_trainer,
    )
)
