"""SHiRA (Bhardwaj et al. 2024) through the peft library: a fixed random sparse set of entries of each
target weight trains, as many as LoRA of rank r would train (r x (in + out)); the update is sparse
and high-rank."""

from dataclasses import dataclass, field

import peft
import torch
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles, target_widths
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class ShiraConfig:
    r: int = 32  # r x (in + out) trained entries per matrix, chosen at random
    mask_seed: int = 0  # the random mask is drawn from this
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def random_mask_on_cpu(base_layer: nn.Module, r: int, random_seed: int | None = None, **kwargs) -> torch.Tensor:
    """peft's random mask (the same entries for the same seed), drawn on the CPU whatever the layer's
    device: peft finds the mask's indices with a data-dependent op that a meta-device model (budgets,
    the count tool) cannot run. The layer moves the indices to its weight's device when it computes."""
    out_features, in_features = base_layer.weight.shape
    generator = torch.Generator()
    if random_seed is not None:
        generator.manual_seed(random_seed)
    chosen = torch.randperm(out_features * in_features, generator=generator)[: r * (in_features + out_features)]
    mask = torch.zeros(out_features * in_features, dtype=torch.bool)
    mask[chosen] = True
    return mask.view(out_features, in_features)


def apply_shira(model: nn.Module, cfg: ShiraConfig, arch: Arch) -> nn.Module:
    peft_config = peft.ShiraConfig(
        r=cfg.r,
        mask_type="random",
        random_seed=cfg.mask_seed,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    peft_config.mask_fn = random_mask_on_cpu
    return peft.get_peft_model(model, peft_config)


def largest_r(cfg) -> int:
    """r x (in + out) entries must fit in the narrowest target (in x out)."""
    return min(i * o // (i + o) for i, o in target_widths(cfg.model, cfg.method.target_modules))


register_method(
    Method(
        "shira",
        ShiraConfig,
        apply_shira,
        family="selective",
        size_knob="r",
        size_knob_limit=largest_r,
        merge=merge_and_unload,
        linear_targets_only=True,  # peft's SHiRA wraps only nn.Linear, not GPT-2's Conv1D
    )
)
