"""DeLoRA (Bini et al. 2025) through the peft library: LoRA whose rank-one components are normalised,
so that a trained scale lambda per matrix bounds the update's Frobenius norm (relative to |W|)."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class DeloraConfig:
    r: int = 8  # rank: r x (in + out) + 1 (lambda) per matrix
    delora_lambda: float = 15  # the initial bound on the update's norm (trained)
    dropout: float = 0.0  # module dropout on the rank components
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_delora(model: nn.Module, cfg: DeloraConfig, arch: Arch) -> nn.Module:
    peft_config = peft.DeloraConfig(
        r=cfg.r,
        delora_lambda=cfg.delora_lambda,
        module_dropout=cfg.dropout,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    return peft.get_peft_model(model, peft_config)


register_method(
    Method(
        "delora",
        DeloraConfig,
        apply_delora,
        family="reparametrised",
        size_knob="r",
        merge=merge_and_unload,
        linear_targets_only=True,  # peft's DeLoRA wraps only nn.Linear, not GPT-2's Conv1D
    )
)
