"""LN tuning (Qi et al. 2022) through the peft library: only the gains and biases of the model's layer
normalisations train (peft trains a copy of each norm layer and swaps it in on merging)."""

from dataclasses import dataclass

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload
from peftbench.methods.registry import Arch, Method, register_method

NORM_CLASS_ENDINGS = ("LayerNorm", "RMSNorm")  # nn.LayerNorm, T5LayerNorm, LlamaRMSNorm, ...


@dataclass
class LNTuningConfig:
    pass  # every normalisation layer of the model trains; there is nothing to choose


def norm_layer_names(model: nn.Module, arch: Arch) -> list[str]:
    """The normalisation layers, found by their class (every architecture names them differently)."""
    names = [name for name, module in model.named_modules() if type(module).__name__.endswith(NORM_CLASS_ENDINGS)]
    if not names:
        raise ValueError(
            f"LN tuning found no normalisation layer (a class ending in {', '.join(NORM_CLASS_ENDINGS)})."
        )
    return names


def apply_ln_tuning(model: nn.Module, cfg: LNTuningConfig, arch: Arch) -> nn.Module:
    return peft.get_peft_model(model, peft.LNTuningConfig(target_modules=norm_layer_names(model, arch)))


register_method(Method("ln_tuning", LNTuningConfig, apply_ln_tuning, family="selective", merge=merge_and_unload))
