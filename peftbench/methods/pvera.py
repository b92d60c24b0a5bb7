"""PVeRA (Fillioux et al. 2025) through the peft library: VeRA's frozen random projections shared by all layers,
with the scaled rank-space activations read as the mean and log-variance of a Gaussian that is sampled in training
(its mean at inference); trained scaling vectors per matrix: out + 2r."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class PveraConfig:
    r: int = 256  # rank of the shared random projections: costs 2r parameters per matrix
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])
    projection_seed: int = 0  # the frozen shared projections are regenerated from this


def apply_pvera(model: nn.Module, cfg: PveraConfig, arch: Arch) -> nn.Module:
    peft_config = peft.PveraConfig(
        r=cfg.r,
        pvera_dropout=cfg.dropout,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
        projection_prng_key=cfg.projection_seed,
        save_projection=False,
    )
    return peft.get_peft_model(model, peft_config)


register_method(
    Method("pvera", PveraConfig, apply_pvera, family="reparametrised", size_knob="r", merge=merge_and_unload)
)
