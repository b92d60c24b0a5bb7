"""Trainable tokens (peft's TrainableTokens, 2025) through the peft library: only chosen rows of the input
embedding train (a dense delta for those rows; every other row and weight stays frozen)."""

from dataclasses import dataclass

import peft
import torch.nn as nn
from transformers import AutoTokenizer

from peftbench.methods.modules import merge_and_unload
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class TrainableTokensConfig:
    token_ids: list[int] | None = None  # the rows that train; null: the tokenizer's special tokens ([CLS], [SEP], ...)


def trained_token_ids(cfg: TrainableTokensConfig, arch: Arch) -> list[int]:
    if cfg.token_ids is not None:
        return list(cfg.token_ids)
    return sorted(set(AutoTokenizer.from_pretrained(arch.tokenizer).all_special_ids))


def apply_trainable_tokens(model: nn.Module, cfg: TrainableTokensConfig, arch: Arch) -> nn.Module:
    # no target: peft finds the input embedding through get_input_embeddings
    return peft.get_peft_model(model, peft.TrainableTokensConfig(token_indices=trained_token_ids(cfg, arch)))


register_method(
    Method(
        "trainable_tokens", TrainableTokensConfig, apply_trainable_tokens, family="selective", merge=merge_and_unload
    )
)
