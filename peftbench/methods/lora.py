"""LoRA (Hu et al. 2021) and its variants through the peft library: DoRA (weight-decomposed,
Liu et al. 2024) and rsLoRA (rank-stabilised scaling alpha/sqrt(r), Kalajdzievski 2023) as their own
names and config classes, and initialisations as `init`: PiSSA (principal singular vectors, Meng et al. 2024;
`pissa_niter_<n>` by n iterations of fast SVD), OLoRA (QR of the weight), orthogonal (A and B from orthogonal
halves, BA = 0), EVA (Paulo et al. 2024: A from the singular vectors of each target's input activations on
training batches, ranks redistributed by explained variance; in `on_train_start`)."""

import re
from dataclasses import dataclass, field

import peft
import torch.nn as nn
from transformers.pytorch_utils import Conv1D

from peftbench.methods.modules import module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method

INITS = ("default", "gaussian", "orthogonal", "pissa", "pissa_niter_<n>", "olora", "eva")
PISSA_FAST_SVD = re.compile(r"pissa_niter_[1-9][0-9]*")  # pissa_niter_<n>: n subspace iterations


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
    if cfg.init not in INITS and not PISSA_FAST_SVD.fullmatch(cfg.init):
        raise ValueError(f"Unknown LoRA init '{cfg.init}'; valid: {', '.join(INITS)}.")
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    eva_config = None
    if cfg.init == "eva":  # a classifier's labels are one per example, not per token: no label mask
        eva_config = peft.EvaConfig(use_label_mask=arch.auto_class != "sequence_classification")
    peft_config = peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        bias="none",
        use_dora=cfg.use_dora,
        use_rslora=cfg.use_rslora,
        init_lora_weights=True if cfg.init == "default" else cfg.init,
        eva_config=eva_config,
        # GPT-2's Conv1D stores its weight transposed (in x out)
        fan_in_fan_out=any(isinstance(model.get_submodule(name), Conv1D) for name in targets),
    )
    return peft.get_peft_model(model, peft_config)


def initialize_eva(model: nn.Module, total_steps: int, train_loader) -> None:
    """init=eva: A from the training batches' activations, before the optimizer is made (peft's
    initialize_lora_eva_weights, which also sets each matrix's rank); other inits: nothing."""
    if model.peft_config["default"].init_lora_weights != "eva":
        return
    device = next(model.parameters()).device

    def forward(model, batch):
        return model(**{key: value.to(device) for key, value in batch.items()})

    peft.initialize_lora_eva_weights(model, train_loader, forward_fn=forward, show_progress_bar=False)


def merge_lora(model: nn.Module) -> nn.Module:
    return model.merge_and_unload()  # W <- W + (alpha/r) B A; the plain transformers model remains


for name, config_cls in (("lora", LoraConfig), ("dora", DoRAConfig), ("rslora", RsLoraConfig)):
    register_method(
        Method(
            name,
            config_cls,
            apply_lora,
            family="reparametrised",
            size_knob="r",
            merge=merge_lora,
            on_train_start=initialize_eva,
        )
    )
