"""AdaMix (Wang et al. 2022): a mixture of adapter experts at every adapter position. In training each
forward pass routes through one randomly chosen down-projection expert and one randomly chosen
up-projection expert; for inference the experts' weights are averaged into one adapter, so inference
costs exactly one adapter and only that averaged adapter needs storing (`params.stored_after_training`;
the checkpoint keeps every expert, so that training can resume)."""

from dataclasses import dataclass

import torch
import torch.nn as nn

from peftbench.methods.adapters import NON_LINEARITIES, AdapterConfig, BottleneckAdapter, place_adapters
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class AdaMixConfig(AdapterConfig):
    bottleneck: int = 16  # m of every expert
    experts: int = 4  # adapter experts per position (AdaMix: 4)
    places: tuple = ("ffn",)


class AdapterMixture(nn.Module):
    """`experts` down and up projections; random routing in training, their average in evaluation."""

    def __init__(self, width: int, bottleneck: int, experts: int, non_linearity: str, scale: float):
        super().__init__()
        self.down = nn.ModuleList(nn.Linear(width, bottleneck) for _ in range(experts))
        self.up = nn.ModuleList(nn.Linear(bottleneck, width) for _ in range(experts))
        for up in self.up:  # every expert starts at zero output: a fresh mixture is the identity
            nn.init.zeros_(up.weight)
            nn.init.zeros_(up.bias)
        self.non_linearity_name, self.scale = non_linearity, scale
        self.non_linearity = NON_LINEARITIES[non_linearity]()
        self.averaged = None  # the single adapter used for inference, built on the first evaluation pass

    def train(self, mode: bool = True):
        if mode:
            self.averaged = None  # weights move again: average afresh at the next evaluation
        return super().train(mode)

    def _load_from_state_dict(self, *args, **kwargs):
        self.averaged = None  # loaded weights: average afresh
        super()._load_from_state_dict(*args, **kwargs)

    def average(self) -> BottleneckAdapter:
        """One adapter with the experts' mean weights (AdaMix's inference-time merge)."""
        down = self.down[0]
        single = BottleneckAdapter(down.in_features, down.out_features, self.non_linearity_name, self.scale)
        with torch.no_grad():
            for target, experts in ((single.down, self.down), (single.up, self.up)):
                target.weight.copy_(torch.stack([e.weight for e in experts]).mean(0))
                target.bias.copy_(torch.stack([e.bias for e in experts]).mean(0))
        return single.to(down.weight.device).requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            down = self.down[int(torch.randint(len(self.down), ()))]
            up = self.up[int(torch.randint(len(self.up), ()))]
            return self.scale * up(self.non_linearity(down(x)))
        if self.averaged is None:
            object.__setattr__(self, "averaged", self.average())  # a cache, not a submodule (not saved)
        return self.averaged(x)


def apply_adamix(model: nn.Module, cfg: AdaMixConfig, arch: Arch) -> nn.Module:
    if cfg.experts < 1:
        raise ValueError(f"AdaMix experts {cfg.experts} must be at least 1.")
    return place_adapters(
        model, cfg, arch, lambda width, m: AdapterMixture(width, m, cfg.experts, cfg.non_linearity, cfg.scale)
    )


def averaged_size(model: nn.Module) -> int:
    """What is stored after training: one averaged adapter per position (and the other trained tensors)."""
    mixtures = [m for m in model.modules() if isinstance(m, AdapterMixture)]
    # all experts but one per position are training-only (counted from the shapes: works on the meta device)
    extra = sum(sum(p.numel() for p in m.parameters()) * (len(m.down) - 1) // len(m.down) for m in mixtures)
    return sum(p.numel() for p in model.parameters() if p.requires_grad) - extra


register_method(
    Method(
        "adamix",
        AdaMixConfig,
        apply_adamix,
        family="additive",
        size_knob="bottleneck",
        stored_parameters=averaged_size,
    )
)
