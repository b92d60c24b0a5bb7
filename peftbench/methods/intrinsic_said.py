"""Intrinsic SAID (Aghajanyan et al. 2021): train a d-dimensional vector and reach the full parameter
space through a fixed random Fastfood projection (Le et al. 2013; Li et al. 2018's intrinsic
dimension), theta = theta_0 + lambda_i * P(theta_d)_i, with one learned scale lambda_i per projected
tensor (the structure-aware "SAID" part; those scales count towards d).

P = H G Pi H B / norm: B random signs, H the Walsh-Hadamard transform, Pi a random permutation, G
Gaussian. One transform covers all projected tensors, concatenated and padded to a power of two, and
is computed once per forward pass (a hook on the model); its random parts are buffers generated from
`projection_seed`, so the checkpoint holds only the d trained numbers."""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from peftbench.methods.modules import freeze_all
from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.selection import base_parameters, merge_parametrizations

HADAMARD_RADIX = 32  # transform this many entries at a time with a small dense matmul (measured fastest on CPU)


@dataclass
class IntrinsicSaidConfig:
    dimension: int = 1000     # d: numbers trained in all, including one scale per projected tensor
    said: bool = True         # per-tensor scales (SAID); false: plain DID, all d numbers projected
    projection_seed: int = 0  # the random projection, reproducible without storing it
    include: str = ".*"       # regular expression over base parameter names that are projected into


def hadamard(size: int, dtype=torch.float32, device=None) -> torch.Tensor:
    matrix = torch.ones(1, 1, dtype=dtype, device=device)
    while matrix.shape[0] < size:
        matrix = torch.cat([torch.cat([matrix, matrix], 1), torch.cat([matrix, -matrix], 1)], 0)
    return matrix


def walsh_hadamard(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised fast Walsh-Hadamard transform of a vector whose length is a power of two (natural
    order, equal to multiplying by scipy.linalg.hadamard). Radix-32 stages: small dense matmuls."""
    n, h, y = x.numel(), 1, x
    while h < n:
        r = min(HADAMARD_RADIX, n // h)
        block = hadamard(r, x.dtype, x.device)
        y = y.reshape(-1, r) @ block if h == 1 else torch.matmul(block, y.reshape(-1, r, h))
        h *= r
    return y.reshape(n)


class WalshHadamard(torch.autograd.Function):
    """H is symmetric, so the backward pass is the same transform; nothing is saved for it."""

    @staticmethod
    def forward(ctx, x):
        return walsh_hadamard(x)

    @staticmethod
    def backward(ctx, grad):
        return walsh_hadamard(grad)


class FastfoodProjector(nn.Module):
    """theta_d (d_projected) -> a D-vector, P theta_d; and the per-tensor scales."""

    def __init__(self, projected: int, total: int, scales: int, seed: int, device=None):
        super().__init__()
        padded = 2 ** math.ceil(math.log2(max(projected, total, 2)))
        self.total, self.padded = total, padded
        self.theta = nn.Parameter(torch.zeros(projected, device=device))
        self.scales = nn.Parameter(torch.ones(scales, device=device)) if scales else None
        self.current = None
        if torch.device(device or "cpu").type == "meta":  # counting only: shapes, no random numbers
            for name, dtype in (("signs", torch.float32), ("permutation", torch.long), ("gaussian", torch.float32)):
                self.register_buffer(name, torch.empty(padded, dtype=dtype, device="meta"))
            self.norm = 1.0
            return
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("signs", (torch.randint(0, 2, (padded,), generator=generator) * 2 - 1).float().to(device))
        self.register_buffer("permutation", torch.randperm(padded, generator=generator).to(device))
        gaussian = torch.randn(padded, generator=generator)
        self.register_buffer("gaussian", gaussian.to(device))
        # Li et al.'s normalisation: each projected entry has roughly unit-norm sensitivity
        self.norm = math.sqrt(padded * float((gaussian ** 2).sum())) * math.sqrt(total / padded)

    def project(self) -> torch.Tensor:
        x = nn.functional.pad(self.theta, (0, self.padded - self.theta.numel()))
        x = WalshHadamard.apply(self.signs * x)
        x = WalshHadamard.apply(x[self.permutation] * self.gaussian)
        return x[: self.total] / self.norm

    def refresh(self, *_) -> None:
        """Forward pre-hook of the model: one projection per forward pass, shared by every tensor."""
        self.current = self.project()

    def release(self, *_) -> None:
        """Forward hook: the projection's graph lives on in autograd, not in the module (copies stay plain)."""
        self.current = None

    def scale(self, index: int) -> torch.Tensor | float:
        return self.scales[index] if self.scales is not None else 1.0


class ProjectedDelta(nn.Module):
    """A tensor's slice of the shared projection, scaled: W = W0 + lambda_i * P(theta_d)[slice]."""

    def __init__(self, projector: FastfoodProjector, offset: int, index: int):
        super().__init__()
        object.__setattr__(self, "projector", projector)  # shared, not a submodule of every weight
        self.offset, self.index = offset, index

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        current = self.projector.current
        if current is None:  # the weight read outside a forward pass: project for this tensor alone
            current = self.projector.project()
        delta = current[self.offset: self.offset + original.numel()].view_as(original)
        return original + self.projector.scale(self.index) * delta


def apply_intrinsic_said(model: nn.Module, cfg: IntrinsicSaidConfig, arch: Arch) -> nn.Module:
    targets = base_parameters(model, arch, cfg.include)
    scales = len(targets) if cfg.said else 0
    if cfg.dimension <= scales:
        raise ValueError(f"Intrinsic SAID dimension {cfg.dimension} must exceed the {scales} per-tensor scales; "
                         f"raise method.dimension or set method.said=false.")
    freeze_all(model)
    device = getattr(targets[0][1], targets[0][2]).device
    total = sum(getattr(module, attribute).numel() for _, module, attribute in targets)
    projector = FastfoodProjector(cfg.dimension - scales, total, scales, cfg.projection_seed, device)
    model.intrinsic_said = projector  # a submodule: its theta and scales train and are saved
    offset = 0
    for index, (_, module, attribute) in enumerate(targets):
        numel = getattr(module, attribute).numel()
        # unsafe: registering skips the trial call, which would project once per tensor
        parametrize.register_parametrization(module, attribute, ProjectedDelta(projector, offset, index), unsafe=True)
        offset += numel
    model.register_forward_pre_hook(projector.refresh)
    model.register_forward_hook(projector.release)
    return model


def merge_said(model: nn.Module) -> nn.Module:
    """Project once, fold into the weights, and drop the projector and its hooks: a plain model."""
    projector = model.intrinsic_said
    with torch.no_grad():
        projector.refresh()
        model = merge_parametrizations(model)
    for hooks in (model._forward_pre_hooks, model._forward_hooks):
        for key in [k for k, hook in hooks.items() if getattr(hook, "__self__", None) is projector]:
            del hooks[key]
    del model.intrinsic_said
    return model


def said_report(model: nn.Module) -> dict:
    projector = model.intrinsic_said
    buffers = sum(b.numel() * b.element_size() for b in projector.buffers())
    return {"trained": f"a {projector.theta.numel()}-dimensional vector through a Fastfood projection"
                       + (f", and {projector.scales.numel()} per-tensor scales" if projector.scales is not None else ""),
            "projected_parameters": projector.total, "padded_size": projector.padded,
            "projection_buffers_bytes": buffers,
            "scales": projector.scales.tolist() if projector.scales is not None else None}


# No size knob for budgets: `dimension` is the trained count itself (set it directly).
register_method(Method("intrinsic_said", IntrinsicSaidConfig, apply_intrinsic_said, family="reparametrised",
                       report=said_report, merge=merge_said))
