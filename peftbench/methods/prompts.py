"""Shared by the prompt-learning methods (prompt tuning, prefix tuning, P-tuning): peft's task type
for the model, and the parameter count left after training-only reparametrisations are dropped."""

import torch.nn as nn

from peftbench.methods.registry import Arch

PEFT_TASK_TYPES = {"sequence_classification": "SEQ_CLS", "causal_lm": "CAUSAL_LM", "seq2seq_lm": "SEQ_2_SEQ_LM"}
# Model types whose attention takes peft's per-layer key/value prefixes (past_key_values); DeBERTa's does not.
PREFIX_MODEL_TYPES = ("bert", "roberta", "gpt2", "llama", "t5", "bart")
# Model types whose input embeddings peft can prepend virtual tokens to.
PROMPT_MODEL_TYPES = ("bert", "roberta", "deberta-v2", "gpt2", "llama", "t5", "bart")


def virtual_token_limit(cfg) -> int | None:
    """Virtual tokens and the input share the model's absolute positions; relative ones (T5) set no limit."""
    positions = cfg.model.architecture.get("max_position_embeddings")
    return None if positions is None else positions - cfg.trainer.max_seq_length


def peft_task_type(arch: Arch) -> str:
    return PEFT_TASK_TYPES[arch.auto_class]


def stored_after_reparametrisation(model: nn.Module, virtual_values: int) -> int:
    """Trainable parameters outside the prompt encoder, plus the `virtual_values` numbers the encoder
    computes once training is over (all that inference needs)."""
    outside = sum(p.numel() for name, p in model.named_parameters() if p.requires_grad and "prompt_encoder" not in name)
    return outside + virtual_values
