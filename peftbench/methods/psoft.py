"""PSOFT (orthogonal fine-tuning in the principal subspace, Wu et al. 2026) through the peft library: each target's
update is B (R - I) A, where A and B span the weight's top-r singular subspace (frozen, from its SVD) and
R is a trained r x r orthogonal matrix (Cayley transform of r(r-1)/2 numbers), with two trained r-vectors
that scale it on each side."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles, target_widths
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class PsoftConfig:
    r: int = 32  # the principal subspace's rank: r(r-1)/2 + 2r parameters per matrix
    alpha: int = 32  # the update's scale alpha / r, as in LoRA
    dropout: float = 0.0
    use_cayley_neumann: bool = False  # the Cayley inverse as a Neumann series (faster, approximate)
    num_cayley_neumann_terms: int = 5
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_psoft(model: nn.Module, cfg: PsoftConfig, arch: Arch) -> nn.Module:
    peft_config = peft.PsoftConfig(
        r=cfg.r,
        psoft_alpha=cfg.alpha,
        psoft_dropout=cfg.dropout,
        use_cayley_neumann=cfg.use_cayley_neumann,
        num_cayley_neumann_terms=cfg.num_cayley_neumann_terms,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    return peft.get_peft_model(model, peft_config)


def largest_r(cfg) -> int:
    """The principal subspace lies within the narrowest target's rank."""
    return min(min(i, o) for i, o in target_widths(cfg.model, cfg.method.target_modules))


register_method(
    Method(
        "psoft",
        PsoftConfig,
        apply_psoft,
        family="reparametrised",
        size_knob="r",
        size_knob_limit=largest_r,
        merge=merge_and_unload,
        linear_targets_only=True,  # peft's PSOFT wraps only nn.Linear, not GPT-2's Conv1D
    )
)
