"""Compacter (Karimi Mahabadi et al. 2021): bottleneck adapters whose projections are parameterized
hypercomplex multiplication (PHM) layers, W = sum_i A_i (x) (s_i t_i), with the n x n "slow" matrices
A_i shared by every adapter layer of the model and the low-rank "fast" factors s_i, t_i per layer.
`compacter` sits where Houlsby's adapters do (after attention and FFN); `compacter_pp` (Compacter++)
only after the FFN."""

from dataclasses import dataclass

import torch
import torch.nn as nn

from peftbench.methods.adapters import NON_LINEARITIES, AdapterConfig, place_adapters
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class CompacterConfig(AdapterConfig):
    bottleneck: int = 48  # m; must be a multiple of phm_dim (as must the model width)
    phm_dim: int = 4  # n: number of Kronecker summands and size of the shared A_i
    phm_rank: int = 1  # r: rank of each fast factor s_i t_i
    non_linearity: str = "gelu"


@dataclass
class CompacterPlusPlusConfig(CompacterConfig):
    places: tuple = ("ffn",)  # Compacter++: one adapter per layer, after the FFN


class SharedSlowWeights(nn.Module):
    """The A_i of every PHM layer in the model: n matrices of n x n, trained once."""

    def __init__(self, n: int):
        super().__init__()
        self.a = nn.Parameter(torch.randn(n, n, n) * (1.0 / n))


class PHMLinear(nn.Module):
    """x -> x W + b with W (in x out) = sum_i A_i (x) (s_i t_i), s_i: in/n x r, t_i: r x out/n."""

    def __init__(self, shared: SharedSlowWeights, in_features: int, out_features: int, rank: int, zero: bool = False):
        super().__init__()
        n = shared.a.shape[0]
        for features in (in_features, out_features):
            if features % n:
                raise ValueError(f"Compacter phm_dim {n} does not divide the width {features}; pick a divisor.")
        object.__setattr__(self, "shared", shared)  # one set for the model, not a child of every layer
        self.s = nn.Parameter(torch.randn(n, in_features // n, rank) * (1.0 / in_features) ** 0.5)
        # the up-projection's fast factor starts at zero: a fresh adapter is the identity
        self.t = nn.Parameter(
            torch.zeros(n, rank, out_features // n)
            if zero
            else torch.randn(n, rank, out_features // n) * (1.0 / rank) ** 0.5
        )
        self.bias = nn.Parameter(torch.zeros(out_features))

    def weight(self) -> torch.Tensor:
        fast = self.s @ self.t  # n x in/n x out/n
        return sum(torch.kron(self.shared.a[i], fast[i]) for i in range(fast.shape[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight() + self.bias


class PHMAdapter(nn.Module):
    def __init__(
        self, shared: SharedSlowWeights, width: int, bottleneck: int, rank: int, non_linearity: str, scale: float
    ):
        super().__init__()
        self.down = PHMLinear(shared, width, bottleneck, rank)
        self.non_linearity = NON_LINEARITIES[non_linearity]()
        self.up = PHMLinear(shared, bottleneck, width, rank, zero=True)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.up(self.non_linearity(self.down(x)))


def apply_compacter(model: nn.Module, cfg: CompacterConfig, arch: Arch) -> nn.Module:
    shared = SharedSlowWeights(cfg.phm_dim).to(next(model.parameters()).device)
    model = place_adapters(
        model, cfg, arch, lambda width, m: PHMAdapter(shared, width, m, cfg.phm_rank, cfg.non_linearity, cfg.scale)
    )
    model.compacter_shared = shared  # a submodule of the model: trained and saved once
    return model


# No size knob for budgets: the count barely moves with the bottleneck (2r(d + m) + d + m per adapter), and m
# must stay a multiple of phm_dim.
register_method(Method("compacter", CompacterConfig, apply_compacter, family="additive"))
register_method(Method("compacter_pp", CompacterPlusPlusConfig, apply_compacter, family="additive"))
