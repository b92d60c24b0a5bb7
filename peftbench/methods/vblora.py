"""VB-LoRA (Li et al. 2024) through the peft library: LoRA whose factors are cut into sub-vectors, each
a top-k mixture of one vector bank shared by every layer; the bank and the mixing logits train."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class VBLoRAConfig:
    r: int = 4  # rank: r x (in + out) / vector_length x num_vectors logits per matrix
    num_vectors: int = 90  # vectors in the shared bank
    vector_length: int = 128  # must divide every target's widths, so r is no size knob on every model
    topk: int = 2  # bank vectors mixed per sub-vector
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_vblora(model: nn.Module, cfg: VBLoRAConfig, arch: Arch) -> nn.Module:
    peft_config = peft.VBLoRAConfig(
        r=cfg.r,
        num_vectors=cfg.num_vectors,
        vector_length=cfg.vector_length,
        topk=cfg.topk,
        vblora_dropout=cfg.dropout,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    return peft.get_peft_model(model, peft_config)


register_method(Method("vblora", VBLoRAConfig, apply_vblora, family="reparametrised", merge=merge_and_unload))
