"""Virtual tokens, shared by the methods that train them through peft's prompt learning (prompt
tuning, P-tuning, prefix tuning and P-tuning v2; prefix tuning's also reach MAM and UniPELT): the
model types that take them, how many fit beside the input, peft's task type for the model, the
wrapping itself, and the parameter count left after training-only reparametrisations are dropped."""

import peft
import torch.nn as nn
from peft.utils import ModulesToSaveWrapper

from peftbench.methods.registry import Arch
from peftbench.tensor_tags import mark_outside_total

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


def wrap_prompt_learning(model: nn.Module, peft_config: peft.PromptLearningConfig) -> nn.Module:
    """peft's prompt-learning model. For a classification task peft trains a copy of the task head
    (its modules_to_save) and keeps the frozen original beside it, unused by the tuned model: the
    original is tagged outside the model's total, so the head is counted once, as under every method."""
    model = peft.get_peft_model(model, peft_config)
    for module in model.modules():
        if isinstance(module, ModulesToSaveWrapper):
            for parameter in module.original_module.parameters():
                mark_outside_total(parameter)
    return model


def stored_after_reparametrisation(model: nn.Module, virtual_values: int) -> int:
    """Trainable parameters outside the prompt encoder, plus the `virtual_values` numbers the encoder
    computes once training is over (all that inference needs)."""
    trained = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    outside = sum(p.numel() for name, p in trained if "prompt_encoder" not in name)
    return outside + virtual_values
