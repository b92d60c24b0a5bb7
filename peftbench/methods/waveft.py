"""WaveFT (Bilican et al. 2025) through the peft library: the update of each target matrix is the inverse
2D discrete wavelet transform of n trained coefficients at fixed random locations (regenerated from a seed)."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class WaveFTConfig:
    n_frequency: int = 2592  # n trained wavelet coefficients per matrix, whatever its size
    scaling: float = 25.0  # the update's scale (like LoRA's alpha)
    wavelet_family: str = "db1"  # db1 (Haar), sym2, coif1, ...: longer filters cost time
    use_idwt: bool = True  # false: the coefficients are the sparse update itself (faster, worse in the paper)
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])
    location_seed: int = 777  # the coefficients' random locations are regenerated from this


def apply_waveft(model: nn.Module, cfg: WaveFTConfig, arch: Arch) -> nn.Module:
    peft_config = peft.WaveFTConfig(
        n_frequency=cfg.n_frequency,
        scaling=cfg.scaling,
        wavelet_family=cfg.wavelet_family,
        use_idwt=cfg.use_idwt,
        random_loc_seed=cfg.location_seed,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    return peft.get_peft_model(model, peft_config)


register_method(
    Method(
        "waveft",
        WaveFTConfig,
        apply_waveft,
        family="reparametrised",
        size_knob="n_frequency",
        merge=merge_and_unload,
    )
)
