"""CPT, context-aware prompt tuning (Blau et al. 2025, arXiv:2410.17222), through the peft library, for
causal LMs: the prompt is the embeddings of training examples themselves, inputs followed by their labels
as in-context learning shows them. Training refines only the context's input tokens, each within a ball of
radius input_epsilon x sqrt(width / 2048) around its start (peft's projection); the context's label tokens
stay fixed and carry a loss of their own, weighted loss_decay^k for the k-th example before the input.

A method's `apply` sees no data, so it wraps the model with a placeholder context and `on_train_start`
builds the real one from the first training batches: whole examples, the earliest cut from its start, so
the context is exactly `context_tokens` long and ends on a label. The rendered prompt is one input span:
the paper's separate template types (1 and 3, their own epsilon) need the template apart from the text."""

from dataclasses import dataclass

import peft
import torch.nn as nn
from peft.tuners.cpt.model import CPTEmbedding

from peftbench.formats import IGNORE
from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.virtual_tokens import virtual_token_limit

INPUT, LABEL = 2, 4  # peft's token types of the i-th example: 4i + 2 its input, 4i + 4 its label


@dataclass
class CptConfig:
    context_tokens: int = 256  # size knob: tokens of training examples in the context (context_tokens x width)
    input_epsilon: float = 0.1  # peft's: each input token moves at most this x sqrt(width / 2048)
    loss_decay: float = 1.0  # weight of each earlier example's label loss relative to the next; 1: unweighted


def apply_cpt(model: nn.Module, cfg: CptConfig, arch: Arch) -> nn.Module:
    if not 0 < cfg.loss_decay <= 1:
        raise ValueError(f"CPT's loss_decay must be in (0, 1], not {cfg.loss_decay}.")
    peft_config = peft.CPTConfig(
        task_type="CAUSAL_LM",
        cpt_token_ids=[0] * cfg.context_tokens,  # a placeholder: on_train_start puts training examples here
        cpt_tokens_type_mask=[LABEL] * cfg.context_tokens,
        opt_weighted_loss_type="decay" if cfg.loss_decay < 1 else "none",
        opt_loss_decay_factor=cfg.loss_decay,
        opt_projection_epsilon=cfg.input_epsilon,
    )
    return peft.get_peft_model(model, peft_config)


def context_examples(train_loader, tokens: int) -> list[tuple[list[int], list[int]]]:
    """(token ids, labels) of the first training examples, padding dropped, until they hold `tokens`;
    the loader is read again from its start when one pass holds fewer."""
    examples, held = [], 0
    while held < tokens:
        before = held
        for batch in train_loader:
            for ids, mask, labels in zip(batch["input_ids"], batch["attention_mask"], batch["labels"]):
                keep = mask.bool()
                examples.append((ids[keep].tolist(), labels[keep].tolist()))
                held += len(examples[-1][0])
                if held >= tokens:
                    return examples
        if held == before:
            raise ValueError("CPT builds its context from training examples, and the training set yields none.")
    return examples


def build_context(model: nn.Module, total_steps: int, train_loader) -> None:
    """on_train_start: the context from training examples replaces the placeholder prompt."""
    config = model.peft_config[model.active_adapter]
    examples = context_examples(train_loader, config.num_virtual_tokens)
    ids, types = [], []
    for i, (example_ids, labels) in enumerate(examples):
        ids += example_ids
        types += [4 * i + (INPUT if label == IGNORE else LABEL) for label in labels]
    config.cpt_token_ids = ids[-config.num_virtual_tokens :]  # the earliest example cut from its start
    config.cpt_tokens_type_mask = types[-config.num_virtual_tokens :]
    config.cpt_mask = [1] * config.num_virtual_tokens
    placeholder = model.prompt_encoder[model.active_adapter]
    device = placeholder.embedding.weight.device
    model.prompt_encoder[model.active_adapter] = CPTEmbedding(config, model.word_embeddings).to(device)
    model.cpt_context = {
        "examples": len(examples),
        "input_tokens": sum(t % 4 == INPUT for t in config.cpt_tokens_type_mask),
        "label_tokens": sum(t % 4 == 0 for t in config.cpt_tokens_type_mask),
    }


def context_report(model: nn.Module) -> dict:
    """The context the run trained: how many examples, and its input (trained) and label (fixed) tokens."""
    return dict(getattr(model, "cpt_context", {}))


register_method(
    Method(
        "cpt",
        CptConfig,
        apply_cpt,
        family="additive",
        size_knob="context_tokens",
        size_knob_limit=virtual_token_limit,
        model_types=("gpt2", "llama"),  # peft prepends the context to their input embeddings
        auto_classes=("causal_lm",),  # peft's CPT serves causal language models only
        on_train_start=build_context,
        report=context_report,
    )
)
