"""Intrinsic SAID (Aghajanyan et al. 2021): train a d-dimensional vector and reach the full parameter
space through a fixed random Fastfood projection (Le et al. 2013; Li et al. 2018's intrinsic
dimension), theta = theta_0 + lambda_i * P(theta_d)_i, with one learned scale lambda_i per projected
tensor (the structure-aware "SAID" part; those scales count towards d).

P stacks Fastfood blocks V_c = H G_c Pi_c H B_c / norm_c (B random signs, H the Walsh-Hadamard
transform, Pi a random permutation, G Gaussian), as Le et al. stack blocks when the output is larger
than the input; the blocks together cover all projected tensors, concatenated. Two things keep it
practical on CPU: blocks of at most BLOCK_SIZE entries (less padding than one power of two over all
parameters), and the first transform's input is zero beyond theta's length d', so H B theta is
H_d' (B theta) tiled, a transform of d' entries instead of the block's. The permutation then
reads from that small tile directly. The projection is computed once per forward pass (a hook on the
model); its random parts are buffers generated from `projection_seed`, so the checkpoint holds only the
d trained numbers."""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from peftbench.methods.modules import freeze_all
from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.selection import base_parameters, merge_parametrizations

HADAMARD_RADIX = 32  # transform this many entries at a time with a small dense matmul (measured fastest on CPU)
BLOCK_SIZE = 2**20  # largest Fastfood block (4 MiB of fp32: cache-friendly); as many as needed cover the parameters


@dataclass
class IntrinsicSaidConfig:
    dimension: int = 1000  # d: numbers trained in all, including one scale per projected tensor
    said: bool = True  # per-tensor scales (SAID); false: plain DID, all d numbers projected
    projection_seed: int = 0  # the random projection, reproducible without storing it
    include: str = ".*"  # regular expression over base parameter names that are projected into


def hadamard(size: int, dtype=torch.float32, device=None) -> torch.Tensor:
    matrix = torch.ones(1, 1, dtype=dtype, device=device)
    while matrix.shape[0] < size:
        matrix = torch.cat([torch.cat([matrix, matrix], 1), torch.cat([matrix, -matrix], 1)], 0)
    return matrix


def walsh_hadamard(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised fast Walsh-Hadamard transform along the last axis, whose length is a power of two
    (natural order, equal to multiplying by scipy.linalg.hadamard). Radix-32 stages: small matmuls."""
    n, h, y = x.shape[-1], 1, x
    while h < n:
        r = min(HADAMARD_RADIX, n // h)
        block = hadamard(r, x.dtype, x.device)
        y = y.reshape(-1, r) @ block if h == 1 else torch.matmul(block, y.reshape(-1, r, h))
        h *= r
    return y.reshape(x.shape)


class WalshHadamard(torch.autograd.Function):
    """H is symmetric, so the backward pass is the same transform; nothing is saved for it."""

    @staticmethod
    def forward(ctx, x):
        return walsh_hadamard(x)

    @staticmethod
    def backward(ctx, grad):
        return walsh_hadamard(grad)


def power_of_two(n: int) -> int:
    return 2 ** math.ceil(math.log2(max(n, 2)))


class FastfoodProjector(nn.Module):
    """theta_d (d_projected numbers) -> a D-vector, P theta_d; and the per-tensor scales."""

    def __init__(self, projected: int, sizes: list[int], scales: int, seed: int, device=None):
        super().__init__()
        self.sizes, total = sizes, sum(sizes)
        self.input_size = power_of_two(projected)  # d': theta padded
        self.block = max(min(power_of_two(total), BLOCK_SIZE), self.input_size)
        self.blocks = math.ceil(total / self.block)
        self.total, self.padded = total, self.blocks * self.block
        self.theta = nn.Parameter(torch.zeros(projected, device=device))
        self.scales = nn.Parameter(torch.ones(scales, device=device)) if scales else None
        self.current = None
        shapes = {
            "signs": ((self.blocks, self.input_size), torch.float32),
            "source": ((self.blocks, self.block), torch.long),
            "gaussian": ((self.blocks, self.block), torch.float32),
        }
        if torch.device(device or "cpu").type == "meta":  # counting only: shapes, no random numbers
            for name, (shape, dtype) in shapes.items():
                self.register_buffer(name, torch.empty(shape, dtype=dtype, device="meta"))
            return
        generator = torch.Generator().manual_seed(seed)
        signs = torch.randint(0, 2, shapes["signs"][0], generator=generator) * 2 - 1
        permutations = torch.stack([torch.randperm(self.block, generator=generator) for _ in range(self.blocks)])
        gaussian = torch.randn(shapes["gaussian"][0], generator=generator)
        # each block's columns get unit norm (|H v| = sqrt(n)|v|; HB e_j has entries of +-1), and the
        # stacked projection's columns too; folded into G, as H is linear
        norms = torch.sqrt(self.block * (gaussian**2).sum(dim=1, keepdim=True) * self.blocks)
        # Pi applied to the tiled H B theta: entry k of the block comes from entry Pi(k) mod d' of H_d' B theta
        source = permutations % self.input_size
        for name, value in (("signs", signs.float()), ("source", source), ("gaussian", gaussian / norms)):
            self.register_buffer(name, value.to(device))

    def project(self) -> torch.Tensor:
        x = nn.functional.pad(self.theta, (0, self.input_size - self.theta.numel()))
        x = WalshHadamard.apply(self.signs * x)  # H_d' B theta per block; H B theta over a block is this tiled
        x = torch.gather(x, 1, self.source) * self.gaussian  # G Pi H B theta (normalised), from the small tile
        return WalshHadamard.apply(x).flatten()[: self.total]

    def pieces(self) -> tuple[torch.Tensor, ...]:
        """The projection split per tensor in one op (slicing each piece apart would give every piece's
        backward pass a gradient the size of all parameters)."""
        return self.project().split(self.sizes)

    def refresh(self, *_) -> None:
        """Forward pre-hook of the model: one projection per forward pass, shared by every tensor."""
        self.current = self.pieces()

    def release(self, *_) -> None:
        """Forward hook: the projection's graph lives on in autograd, not in the module (copies stay plain)."""
        self.current = None

    def scale(self, index: int) -> torch.Tensor | float:
        return self.scales[index] if self.scales is not None else 1.0


class ProjectedDelta(nn.Module):
    """A tensor's slice of the shared projection, scaled: W = W0 + lambda_i * P(theta_d)[slice]."""

    def __init__(self, projector: FastfoodProjector, index: int):
        super().__init__()
        object.__setattr__(self, "projector", projector)  # shared, not a submodule of every weight
        self.index = index

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        pieces = self.projector.current
        if pieces is None:  # the weight read outside a forward pass
            pieces = self.projector.pieces()
        delta = pieces[self.index].view_as(original)
        return original + self.projector.scale(self.index) * delta


def apply_intrinsic_said(model: nn.Module, cfg: IntrinsicSaidConfig, arch: Arch) -> nn.Module:
    targets = base_parameters(model, arch, cfg.include)
    scales = len(targets) if cfg.said else 0
    if cfg.dimension <= scales:
        raise ValueError(
            f"Intrinsic SAID dimension {cfg.dimension} must exceed the {scales} per-tensor scales; "
            f"raise method.dimension or set method.said=false."
        )
    freeze_all(model)
    device = getattr(targets[0][1], targets[0][2]).device
    sizes = [getattr(module, attribute).numel() for _, module, attribute in targets]
    projector = FastfoodProjector(cfg.dimension - scales, sizes, scales, cfg.projection_seed, device)
    model.intrinsic_said = projector  # a submodule: its theta and scales train and are saved
    for index, (_, module, attribute) in enumerate(targets):
        # unsafe: registering skips the trial call, which would project once per tensor
        parametrize.register_parametrization(module, attribute, ProjectedDelta(projector, index), unsafe=True)
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
    return {
        "trained": f"a {projector.theta.numel()}-dimensional vector through a Fastfood projection"
        + (f", and {projector.scales.numel()} per-tensor scales" if projector.scales is not None else ""),
        "projected_parameters": projector.total,
        "padded_size": projector.padded,
        "fastfood_blocks": projector.blocks,
        "block_size": projector.block,
        "projection_buffers_bytes": buffers,
        "scales": projector.scales.tolist() if projector.scales is not None else None,
    }


# No size knob for budgets: `dimension` is the trained count itself (set it directly).
register_method(
    Method(
        "intrinsic_said",
        IntrinsicSaidConfig,
        apply_intrinsic_said,
        family="reparametrised",
        report=said_report,
        merge=merge_said,
    )
)
