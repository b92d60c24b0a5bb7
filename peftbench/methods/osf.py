"""OSF (orthogonal subspace fine-tuning, Nayak et al. 2025) through the peft library: each target weight
is split by its SVD; the top effective_rank singular directions stay frozen and the rest (U, S, V of the
low subspace) train, kept orthogonal to the frozen ones by projecting their gradients."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class OSFConfig:
    # frozen top singular directions; k = min(in, out) - effective_rank train: k x (in + out + 1) per matrix.
    # null: half of min(in, out)
    effective_rank: int | None = None
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_osf(model: nn.Module, cfg: OSFConfig, arch: Arch) -> nn.Module:
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    return peft.get_peft_model(model, peft.OSFConfig(effective_rank=cfg.effective_rank, target_modules=targets))


register_method(
    Method(
        "osf",
        OSFConfig,
        apply_osf,
        family="reparametrised",
        merge=merge_and_unload,
        linear_targets_only=True,  # peft's OSF wraps only nn.Linear, not GPT-2's Conv1D
    )
)
