"""P-tuning v1 (Liu et al. 2021) through the peft library: virtual input tokens produced by a
trained prompt encoder (MLP or LSTM); after training only the encoder's outputs need storing."""

from dataclasses import dataclass

import peft
import torch.nn as nn

from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.virtual_tokens import (
    PROMPT_MODEL_TYPES,
    peft_task_type,
    stored_after_reparametrisation,
    virtual_token_limit,
    wrap_prompt_learning,
)

ENCODERS = {"mlp": "MLP", "lstm": "LSTM"}


@dataclass
class PTuningConfig:
    num_virtual_tokens: int = 20
    encoder: str = "mlp"  # mlp | lstm
    encoder_hidden_size: int = 128


def apply_p_tuning(model: nn.Module, cfg: PTuningConfig, arch: Arch) -> nn.Module:
    if cfg.encoder not in ENCODERS:
        raise ValueError(f"Unknown P-tuning encoder '{cfg.encoder}'; valid: {', '.join(ENCODERS)}.")
    peft_config = peft.PromptEncoderConfig(
        task_type=peft_task_type(arch),
        num_virtual_tokens=cfg.num_virtual_tokens,
        encoder_reparameterization_type=ENCODERS[cfg.encoder],
        encoder_hidden_size=cfg.encoder_hidden_size,
        num_transformer_submodules=1,
    )  # input tokens of the encoder only
    return wrap_prompt_learning(model, peft_config)


def stored_prompts(model: nn.Module) -> int:
    config = model.peft_config["default"]
    return stored_after_reparametrisation(model, config.num_virtual_tokens * config.token_dim)


register_method(
    Method(
        "p_tuning",
        PTuningConfig,
        apply_p_tuning,
        family="additive",
        size_knob="num_virtual_tokens",
        size_knob_limit=virtual_token_limit,
        model_types=PROMPT_MODEL_TYPES,
        stored_parameters=stored_prompts,
    )
)
