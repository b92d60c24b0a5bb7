"""DEFT (decompositional efficient fine-tuning, Kumar et al. 2025) through the peft library: each target weight W
becomes (I - P_proj) W + Q_P R: a trained direction P (out x r) is projected out of W and a trained injection R (r x
in) put in; R starts so that the weight is exactly W."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class DeftConfig:
    r: int = 8  # rank of the projection and the injection: r x (in + out) per matrix
    decomposition: str = "relu"  # relu: P_proj = P relu(P)^T; qr: the orthogonal projector of qr(P)
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_deft(model: nn.Module, cfg: DeftConfig, arch: Arch) -> nn.Module:
    peft_config = peft.DeftConfig(
        r=cfg.r,
        decomposition_method=cfg.decomposition,
        deft_dropout=cfg.dropout,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    return peft.get_peft_model(model, peft_config)  # peft transposes GPT-2's Conv1D weights itself


register_method(Method("deft", DeftConfig, apply_deft, family="reparametrised", size_knob="r", merge=merge_and_unload))
