"""FRoD (AAAI 2026, "Full-Rank Efficient Fine-Tuning with Rotational Degrees") through the peft library: each target
weight is rewritten as U (diag(lambda) + S) V^T, with V a basis shared by all targets of a kind (derived from their
weights, regenerated rather than stored) and U frozen; the scales lambda (in per matrix) and a fixed random sparse
set of S's off-diagonal entries train."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class FrodConfig:
    sparse_rate: float = 0.01  # trained entries of S: floor(sparse_rate x in^2) per matrix, besides its in scales
    regularization_alpha: float = 0.001  # ridge term in deriving the shared basis from the weights
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])
    pattern_seed: int = 0  # the sparse pattern is drawn from this


def apply_frod(model: nn.Module, cfg: FrodConfig, arch: Arch) -> nn.Module:
    peft_config = peft.FrodConfig(
        sparse_rate=cfg.sparse_rate,
        regularization_alpha=cfg.regularization_alpha,
        frod_dropout=cfg.dropout,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
        projection_prng_key=cfg.pattern_seed,
        save_projection=False,
        progressbar=False,
    )
    return peft.get_peft_model(model, peft_config)  # peft transposes GPT-2's Conv1D weights itself


register_method(Method("frod", FrodConfig, apply_frod, family="reparametrised", merge=merge_and_unload))
