"""C3A (Chen et al. 2025) through the peft library: the update of each target matrix is a grid of
circulant blocks (circular convolutions, computed by FFT), one trained kernel of b numbers per block:
in x out / b per matrix, so fewer parameters at a larger b."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class C3AConfig:
    block_size: int = 128  # b: must divide each target's widths; the count falls as b grows, so it is no size knob
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_c3a(model: nn.Module, cfg: C3AConfig, arch: Arch) -> nn.Module:
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    return peft.get_peft_model(model, peft.C3AConfig(block_size=cfg.block_size, target_modules=targets))


register_method(
    Method(
        "c3a",
        C3AConfig,
        apply_c3a,
        family="reparametrised",
        merge=merge_and_unload,
        linear_targets_only=True,  # peft's C3A wraps only nn.Linear, not GPT-2's Conv1D
    )
)
