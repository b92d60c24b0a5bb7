"""Prompt tuning (Lester et al. 2021) through the peft library: trained soft-prompt vectors
prepended to the input embeddings; the model itself is untouched."""

from dataclasses import dataclass

import peft
import torch.nn as nn

from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.virtual_tokens import (
    PROMPT_MODEL_TYPES,
    peft_task_type,
    virtual_token_limit,
    wrap_prompt_learning,
)

INITS = {"random": "RANDOM", "sample_vocab": "SAMPLE_VOCAB", "text": "TEXT"}


@dataclass
class PromptTuningConfig:
    num_virtual_tokens: int = 20
    init: str = "random"  # random | sample_vocab (embeddings of random vocabulary words) | text
    init_text: str | None = None  # with init=text: the prompt starts as this text's embeddings


def apply_prompt_tuning(model: nn.Module, cfg: PromptTuningConfig, arch: Arch) -> nn.Module:
    if cfg.init not in INITS:
        raise ValueError(f"Unknown prompt-tuning init '{cfg.init}'; valid: {', '.join(INITS)}.")
    if cfg.init == "text" and not cfg.init_text:
        raise ValueError("Prompt-tuning init 'text' needs method.init_text, the text to start from.")
    peft_config = peft.PromptTuningConfig(
        task_type=peft_task_type(arch),
        num_virtual_tokens=cfg.num_virtual_tokens,
        prompt_tuning_init=INITS[cfg.init],
        prompt_tuning_init_text=cfg.init_text if cfg.init == "text" else None,
        tokenizer_name_or_path=arch.tokenizer if cfg.init == "text" else None,
        # the encoder's input only, as Lester et al. (peft doubles it for encoder-decoders)
        num_transformer_submodules=1,
    )
    return wrap_prompt_learning(model, peft_config)


register_method(
    Method(
        "prompt_tuning",
        PromptTuningConfig,
        apply_prompt_tuning,
        family="additive",
        size_knob="num_virtual_tokens",
        size_knob_limit=virtual_token_limit,
        model_types=PROMPT_MODEL_TYPES,
    )
)
