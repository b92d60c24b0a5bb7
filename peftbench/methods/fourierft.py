"""FourierFT (Gao et al. 2024) through the peft library: the update of each target matrix is the
inverse 2D Fourier transform of n trained spectral coefficients at random frequencies (the same
frequencies in every matrix, regenerated from a seed)."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class FourierFTConfig:
    n_frequency: int = 1000  # n trained coefficients per matrix, whatever its size
    scaling: float = 150.0  # the update's scale (the paper's alpha)
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])
    frequency_seed: int = 777  # the random frequencies are regenerated from this, not stored


def apply_fourierft(model: nn.Module, cfg: FourierFTConfig, arch: Arch) -> nn.Module:
    peft_config = peft.FourierFTConfig(
        n_frequency=cfg.n_frequency,
        scaling=cfg.scaling,
        random_loc_seed=cfg.frequency_seed,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    return peft.get_peft_model(model, peft_config)  # peft transposes GPT-2's Conv1D weights itself


register_method(
    Method(
        "fourierft",
        FourierFTConfig,
        apply_fourierft,
        family="reparametrised",
        size_knob="n_frequency",
        merge=merge_and_unload,
    )
)
