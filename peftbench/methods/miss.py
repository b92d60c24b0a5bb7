"""MiSS (Kang & Yin 2025, formerly Bone) through the peft library: one trained r x out shard per target
matrix, shared across the input dimension's r-wide slices to form the update."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles, target_widths
from peftbench.methods.registry import Arch, Method, register_method

INITS = ("miss", "bat", "mini")


@dataclass
class MissConfig:
    r: int = 64  # shard rows: r x out per matrix; at most the input width
    dropout: float = 0.0
    init: str = "miss"  # miss | bat (nonlinear updates across shards; r must divide in and out) | mini (r x mini_r)
    mini_r: int = 1  # mini's shard width; should divide out
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_miss(model: nn.Module, cfg: MissConfig, arch: Arch) -> nn.Module:
    if cfg.init not in INITS:
        raise ValueError(f"Unknown MiSS init '{cfg.init}'; valid: {', '.join(INITS)}.")
    peft_config = peft.MissConfig(
        r=cfg.r,
        miss_dropout=cfg.dropout,
        init_weights=True if cfg.init == "miss" else cfg.init,
        mini_r=cfg.mini_r,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    return peft.get_peft_model(model, peft_config)


def largest_r(cfg) -> int:
    return min(i for i, _ in target_widths(cfg.model, cfg.method.target_modules))


register_method(
    Method(
        "miss",
        MissConfig,
        apply_miss,
        family="reparametrised",
        size_knob="r",
        size_knob_limit=largest_r,
        merge=merge_and_unload,
        linear_targets_only=True,  # peft's MiSS wraps only nn.Linear, not GPT-2's Conv1D
    )
)
