"""LLaMA-Adapter (Zhang et al. 2023) through the peft library: adapter_len trained prompt vectors of the
model width in each of the top adapter_layers attention layers, attended to through a zero-initialised
gate per layer (so training starts from the base model exactly)."""

from dataclasses import dataclass

import peft
import torch.nn as nn

from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.virtual_tokens import peft_task_type


@dataclass
class AdaptionPromptConfig:
    adapter_len: int = 10  # prompt vectors per adapted layer (the paper's 10): adapter_len x width + 1 gate each
    adapter_layers: int | None = None  # the top layers that get prompts; null: every layer


def apply_adaption_prompt(model: nn.Module, cfg: AdaptionPromptConfig, arch: Arch) -> nn.Module:
    layers = cfg.adapter_layers if cfg.adapter_layers is not None else model.config.num_hidden_layers
    peft_config = peft.AdaptionPromptConfig(
        adapter_len=cfg.adapter_len, adapter_layers=layers, task_type=peft_task_type(arch)
    )
    return peft.get_peft_model(model, peft_config)


register_method(
    Method(
        "adaption_prompt",
        AdaptionPromptConfig,
        apply_adaption_prompt,
        family="additive",
        size_knob="adapter_len",
        # peft's adaption prompt rewrites the attention of these only (its table of model types)
        model_types=("llama", "mistral", "gpt2"),
    )
)
