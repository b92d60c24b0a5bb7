"""TinyLoRA (Morris et al. 2026, "Learning to Reason in 13 Parameters") through the peft library: each target weight's
frozen rank-r SVD (U, Sigma, V) is adjusted by U Sigma (sum_k v_k P_k) V^T, where P are fixed random r x r
tensors and v a tiny trained vector of u numbers, shared by a group of matrices (weight_tying)."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class TinyLoraConfig:
    r: int = 2  # rank of the frozen SVD the update acts in (the paper's r = 2)
    u: int = 64  # trained numbers per group of tied matrices
    weight_tying: float = 0.0  # 0: every matrix its own v; 1: one v for all
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])
    projection_seed: int = 42  # the fixed projections P are regenerated from this


def apply_tinylora(model: nn.Module, cfg: TinyLoraConfig, arch: Arch) -> nn.Module:
    peft_config = peft.TinyLoraConfig(
        r=cfg.r,
        u=cfg.u,
        weight_tying=cfg.weight_tying,
        tinylora_dropout=cfg.dropout,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
        projection_seed=cfg.projection_seed,
        save_projection=False,
    )
    return peft.get_peft_model(model, peft_config)


register_method(
    Method("tinylora", TinyLoraConfig, apply_tinylora, family="reparametrised", size_knob="u", merge=merge_and_unload)
)
