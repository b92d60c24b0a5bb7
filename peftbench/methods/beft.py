"""BEFT (bias-efficient fine-tuning, Huang et al. 2025) through the peft library: only a bias on the output of each
target projection trains (the paper's choice: the value projections), out numbers per matrix."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import LINEAR_BIASED_MODEL_TYPES, merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class BeftConfig:
    target_modules: list[str] = field(default_factory=lambda: ["v"])  # the paper finds the value biases best


def apply_beft(model: nn.Module, cfg: BeftConfig, arch: Arch) -> nn.Module:
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    return peft.get_peft_model(model, peft.BeftConfig(target_modules=targets))


register_method(
    Method(
        "beft",
        BeftConfig,
        apply_beft,
        family="selective",
        merge=merge_and_unload,  # the trained bias adds to the layer's own
        # peft's BEFT wraps nn.Linear, not GPT-2's Conv1D, and merges into the layer's own bias
        model_types=LINEAR_BIASED_MODEL_TYPES,
    )
)
