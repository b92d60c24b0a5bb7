"""GaLore (Zhao et al. 2024, "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection"): every
parameter trains, as in full fine-tuning, but the target weight matrices' gradients are projected onto their
top `rank` singular directions (recomputed every `update_proj_gap` steps), where AdamW keeps its moments; the
update is projected back and scaled by `scale`. Other parameters take plain AdamW steps in the same optimizer
(galore-torch's GaLoreAdamW, the paper's code, with its two parameter groups)."""

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from peftbench.methods.modules import module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method

PROJECTION_TYPES = ("std", "reverse_std", "left", "right", "full")  # galore_torch.GaLoreProjector's proj_type


@dataclass
class GaLoreConfig:
    rank: int = 4
    update_proj_gap: int = 500
    scale: float = 4.0
    proj_type: str = "std"
    target_modules: list[str] = field(default_factory=lambda: ["q", "k", "v", "attn_out", "ffn_in", "ffn_out"])


def apply_galore(model: nn.Module, cfg: GaLoreConfig, arch: Arch) -> nn.Module:
    if cfg.proj_type not in PROJECTION_TYPES:
        raise ValueError(f"Unknown GaLore proj_type '{cfg.proj_type}'; valid: {', '.join(PROJECTION_TYPES)}.")
    if cfg.rank < 1 or cfg.update_proj_gap < 1:
        raise ValueError(f"GaLore rank {cfg.rank} and update_proj_gap {cfg.update_proj_gap} must be at least 1.")
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    model.galore_matrices = tuple(f"{name}.weight" for name in targets)  # read when the optimizer is made
    model.galore_config = cfg
    return model


def galore_optimizer(model: nn.Module, trainer) -> torch.optim.Optimizer:
    from galore_torch import GaLoreAdamW  # galore_torch imports bitsandbytes: only where GaLore runs

    cfg = model.galore_config
    named = dict(model.named_parameters())
    projected = [named[name] for name in model.galore_matrices]
    projected_ids = {id(p) for p in projected}
    plain = [p for p in named.values() if p.requires_grad and id(p) not in projected_ids]
    projection = {"rank": cfg.rank, "update_proj_gap": cfg.update_proj_gap, "scale": cfg.scale}
    groups = [{"params": plain}, {"params": projected, **projection, "proj_type": cfg.proj_type}]
    return GaLoreAdamW(groups, lr=trainer.lr, weight_decay=trainer.weight_decay, no_deprecation_warning=True)


register_method(Method("galore", GaLoreConfig, apply_galore, family="baseline", make_optimizer=galore_optimizer))
