"""Prefix tuning (Li & Liang 2021) and P-tuning v2 (Liu et al. 2022) through the peft library:
trained key/value prefixes on every layer. Prefix tuning may train them through an MLP
reparametrisation (dropped after training); P-tuning v2 trains them directly, with the task's
classification head.

Where the model config names the attention modules that take prefixes (`prefix_attn`: T5 and BART,
whose encoder, decoder and cross-attention peft's prefixes do not all reach), the prefixes are
peftbench's own (methods/prefix_attention.py); elsewhere they are the peft library's."""

from dataclasses import dataclass

import peft
import torch.nn as nn

from peftbench.methods import prefix_attention
from peftbench.methods.modules import freeze_all
from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.virtual_tokens import (
    PREFIX_MODEL_TYPES,
    peft_task_type,
    stored_after_reparametrisation,
    virtual_token_limit,
    wrap_prompt_learning,
)


@dataclass
class PrefixTuningConfig:
    num_virtual_tokens: int = 20
    projection: bool = True  # train the prefixes through an MLP (more stable; dropped after training)
    projection_hidden_size: int = 512  # the MLP's width


def native(arch: Arch) -> bool:
    return "prefix_attn" in arch.modules


def attach_native(model: nn.Module, cfg: PrefixTuningConfig, arch: Arch) -> nn.Module:
    projection_hidden_size = cfg.projection_hidden_size if cfg.projection else None
    return prefix_attention.attach_prefixes(model, arch, cfg.num_virtual_tokens, projection_hidden_size)


def apply_prefix_tuning(model: nn.Module, cfg: PrefixTuningConfig, arch: Arch) -> nn.Module:
    if native(arch):
        freeze_all(model)
        return attach_native(model, cfg, arch)
    peft_config = peft.PrefixTuningConfig(
        task_type=peft_task_type(arch),
        num_virtual_tokens=cfg.num_virtual_tokens,
        prefix_projection=cfg.projection,
        encoder_hidden_size=cfg.projection_hidden_size,
    )
    return wrap_prompt_learning(model, peft_config)


def add_prefixes(model: nn.Module, cfg: PrefixTuningConfig, arch: Arch) -> nn.Module:
    """Prefixes on a model that already trains something of its own (a hybrid's adapters). peft
    freezes everything it wraps, so what trained before is made trainable again."""
    if native(arch):
        return attach_native(model, cfg, arch)
    trained = [p for p in model.parameters() if p.requires_grad]
    model = apply_prefix_tuning(model, cfg, arch)
    for parameter in trained:
        parameter.requires_grad_(True)
    return model


def stored_prefixes(model: nn.Module) -> int:
    """Everything trained outside a prefix MLP, and the keys and values it computes: 2 x layers x
    virtual tokens x width (peftbench's prefixes: per group; none: just what trained)."""
    if not hasattr(model, "peft_config"):
        return prefix_attention.stored_numbers(model)
    config = model.peft_config["default"]
    prefix_values = 2 * config.num_layers * config.num_virtual_tokens * config.token_dim
    return stored_after_reparametrisation(model, prefix_values)


@dataclass
class PTuningV2Config:
    num_virtual_tokens: int = 20


def apply_p_tuning_v2(model: nn.Module, cfg: PTuningV2Config, arch: Arch) -> nn.Module:
    prefixes = PrefixTuningConfig(num_virtual_tokens=cfg.num_virtual_tokens, projection=False)
    return apply_prefix_tuning(model, prefixes, arch)


register_method(
    Method(
        "prefix_tuning",
        PrefixTuningConfig,
        apply_prefix_tuning,
        family="additive",
        size_knob="num_virtual_tokens",
        size_knob_limit=virtual_token_limit,
        model_types=PREFIX_MODEL_TYPES,
        stored_parameters=stored_prefixes,
    )
)
register_method(
    Method(
        "p_tuning_v2",
        PTuningV2Config,
        apply_p_tuning_v2,
        family="additive",
        size_knob="num_virtual_tokens",
        size_knob_limit=virtual_token_limit,
        model_types=PREFIX_MODEL_TYPES,
        stored_parameters=stored_prefixes,
    )
)
