"""MAM adapter (He et al. 2022, "Towards a Unified View of Parameter-Efficient Transfer Learning"):
mix and match their best pieces, prefix tuning at the attention (a small prefix, l = 30) and a scaled
parallel adapter at the FFN (a large bottleneck, r = 512, s = 4). The adapters are peftbench's native
ones, placed first; the prefixes are the peft library's, wrapped around that model."""

from dataclasses import dataclass

import torch.nn as nn

from peftbench.methods.adapters import ParallelConfig, apply_adapters
from peftbench.methods.prefix_tuning import PrefixTuningConfig, add_prefixes, stored_prefixes
from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.virtual_tokens import PREFIX_MODEL_TYPES


@dataclass
class MamConfig:
    prefix_length: int = 30  # l: virtual key/value tokens at every attention layer
    prefix_projection: bool = True  # train the prefixes through an MLP (dropped after training)
    projection_hidden_size: int = 512
    bottleneck: int = 512  # r of the parallel adapter at the FFN
    scale: float = 4.0  # s on the adapter branch
    non_linearity: str = "relu"


def apply_mam(model: nn.Module, cfg: MamConfig, arch: Arch) -> nn.Module:
    adapters = ParallelConfig(bottleneck=cfg.bottleneck, scale=cfg.scale, non_linearity=cfg.non_linearity)
    model = apply_adapters(model, adapters, arch)
    prefixes = PrefixTuningConfig(
        num_virtual_tokens=cfg.prefix_length,
        projection=cfg.prefix_projection,
        projection_hidden_size=cfg.projection_hidden_size,
    )
    return add_prefixes(model, prefixes, arch)


register_method(
    Method(
        "mam",
        MamConfig,
        apply_mam,
        family="hybrid",
        size_knob="bottleneck",
        model_types=PREFIX_MODEL_TYPES,
        stored_parameters=stored_prefixes,
    )
)
