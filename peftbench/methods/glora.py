"""GLoRA (Chavan et al. 2023) through the peft library: generalised LoRA; each target layer becomes
W0 + W0 * A + B and b0 + b0 * D + E + W0 C, each of A..E a rank-r pair, a vector, a scalar or nothing."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class GLoraConfig:
    r: int = 8  # rank of the parts set to lora
    a_b: str = "lora"  # the weight's scale A and shift B: lora (r x (in + out) each), vector (out), constant, none
    c: str = "lora"  # the weight-to-bias part C (in -> bias): lora (r x (in + 1)), vector (in), none
    d_e: str = "constant"  # the bias's scale D and shift E: vector (out), constant (1 each), none
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_glora(model: nn.Module, cfg: GLoraConfig, arch: Arch) -> nn.Module:
    peft_config = peft.GloraConfig(
        r=cfg.r,
        config_A_B=cfg.a_b,
        config_C=cfg.c,
        config_D_E=cfg.d_e,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    return peft.get_peft_model(model, peft_config)


register_method(
    Method(
        "glora",
        GLoraConfig,
        apply_glora,
        family="reparametrised",
        size_knob="r",
        merge=merge_and_unload,
        linear_targets_only=True,  # peft's GLoRA wraps only nn.Linear, not GPT-2's Conv1D
    )
)
