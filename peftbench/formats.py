"""How a task meets a model type: the features each example becomes, how a batch is padded, and how
the tuned model is evaluated. The model config's `auto_class` (sequence_classification, causal_lm,
seq2seq_lm) and the task's type (classification, generation) pick one format; the run path asks for
it once and never branches on the method.

- classifier x classification: a new head over the model's output (GLUE as usual).
- causal LM x classification: the prompt, then the label's word; trained on the word's tokens,
  evaluated by the log-likelihood of each label word after the prompt (the highest wins).
- seq2seq x classification: text to text, the label word as the target; evaluated likewise.
- causal LM / seq2seq x generation: trained on the target text (after the prompt, or as the decoder's
  target), evaluated by generating (greedy or beam) and scoring against every reference."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from peftbench import data
from peftbench.data import Example, is_regression, task_type
from peftbench.metrics import compute_metrics

IGNORE = -100  # label positions the loss skips (the prompt, padding)


@dataclass
class Evaluation:
    metrics: dict[str, float]
    predictions: list  # per evaluation example: class id, score (regression) or generated text
    labels: list  # class ids or scores, or each example's references
    generation: dict | None = None  # generation tasks: time and tokens generated, ms per token


@dataclass(frozen=True)
class EvalSetup:
    """What an evaluation reads besides the model and its examples."""

    tokenizer: Any
    task: Any
    max_length: int
    batch_size: int
    device: torch.device


@dataclass(frozen=True)
class Format:
    name: str
    new_head: bool  # a new classification head is made (and always trained)
    # (examples, tokenizer, task, max_length) -> training features, each with its labels
    features: Callable[..., list[dict]]
    # (tokenizer) -> a collate function padding a list of features into a batch
    collate: Callable
    # (model, examples, EvalSetup) -> Evaluation
    evaluate: Callable[..., Evaluation]


def eos_id(tokenizer) -> int:
    """The end-of-text token; tokenizers without one (BERT's WordPiece on a tiny test LM) end on [SEP]."""
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id(tokenizer)


def target_text(example: Example, task) -> str:
    """What the model learns to produce: the label's word (classification) or the reference text."""
    return task.label_words[example.label] if task_type(task) == "classification" else " " + example.label.strip()


def prompt_text(example: Example) -> str:
    return example.prompt if example.prompt is not None else " ".join(example.segments)


def check_prompted(task) -> None:
    if task_type(task) == "classification" and not task.get("label_words"):
        raise ValueError(
            f"Task '{task.name}' has no label_words, so a language model cannot score its labels; "
            f"add label_words (and a prompt) to its config or use a classifier model."
        )
    if task_type(task) == "classification" and is_regression(task):
        raise ValueError(
            f"Task '{task.name}' is a regression task; language models here serve classification "
            f"and generation tasks only."
        )


def pad(sequences: list[list[int]], value: int, left: bool = False) -> torch.Tensor:
    width = max(map(len, sequences))
    padding = [[value] * (width - len(s)) for s in sequences]
    return torch.tensor([p + s if left else s + p for p, s in zip(padding, sequences)])


def batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def shortest_first(items: list, length: Callable) -> tuple[list, list[int]]:
    """The items sorted by length (evaluation batches of similar length pad little), and the order that
    `in_given_order` uses to put results back where their items were."""
    order = sorted(range(len(items)), key=lambda i: length(items[i]))
    return [items[i] for i in order], order


def in_given_order(values: list, order: list[int]) -> list:
    restored = [None] * len(order)
    for value, index in zip(values, order):
        restored[index] = value
    return restored


def lm_collate(tokenizer) -> Callable[[list[dict]], dict]:
    def collate(features: list[dict]) -> dict:
        ids = [f["input_ids"] for f in features]
        return {
            "input_ids": pad(ids, pad_id(tokenizer)),
            "attention_mask": pad([[1] * len(i) for i in ids], 0),
            "labels": pad([f["labels"] for f in features], IGNORE),
        }

    return collate


# --- classifier -------------------------------------------------------------------------------


def classifier_features(examples, tokenizer, task, max_length: int) -> list[dict]:
    return data.tokenize(examples, tokenizer, max_length)


def classifier_collate(tokenizer):
    def collate(batch: list[dict]) -> dict:
        labels = torch.tensor([item["labels"] for item in batch])
        inputs = tokenizer.pad(
            [{k: v for k, v in item.items() if k != "labels"} for item in batch], return_tensors="pt"
        )
        return {**inputs, "labels": labels}

    return collate


@torch.no_grad()
def classifier_evaluate(model, examples, setup: EvalSetup) -> Evaluation:
    tokenizer, task, device = setup.tokenizer, setup.task, setup.device
    features, order = shortest_first(
        classifier_features(examples, tokenizer, task, setup.max_length), lambda feature: len(feature["input_ids"])
    )
    # its own generator: iterating a loader draws a seed, and evaluation must not move the training's random state
    loader = DataLoader(
        features,
        batch_size=setup.batch_size,
        collate_fn=classifier_collate(tokenizer),
        generator=torch.Generator().manual_seed(0),
    )
    predictions = []
    for batch in loader:
        logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
        predictions.append(logits.squeeze(-1) if is_regression(task) else logits.argmax(-1))
    predictions = torch.tensor(in_given_order(torch.cat(predictions).cpu().tolist(), order))
    labels = torch.tensor([feature["labels"] for feature in in_given_order(features, order)])
    return Evaluation(compute_metrics(task.metrics, predictions, labels), predictions.tolist(), labels.tolist())


# --- causal LM --------------------------------------------------------------------------------


def causal_pair(prompt_ids: list[int], target_ids: list[int], max_length: int) -> tuple[list[int], list[int]]:
    """The prompt (cut from its start when too long) followed by the target, within max_length."""
    target_ids = target_ids[: max_length // 2] if len(prompt_ids) + len(target_ids) > max_length else target_ids
    prompt_ids = prompt_ids[-(max_length - len(target_ids)) :]
    return prompt_ids, target_ids


def causal_features(examples, tokenizer, task, max_length: int) -> list[dict]:
    check_prompted(task)
    end = [eos_id(tokenizer)] if task_type(task) == "generation" else []  # generated text learns to stop
    features = []
    for example in examples:
        prompt_ids = tokenizer(prompt_text(example)).input_ids
        target_ids = tokenizer(target_text(example, task), add_special_tokens=False).input_ids + end
        prompt_ids, target_ids = causal_pair(prompt_ids, target_ids, max_length)
        features.append({"input_ids": prompt_ids + target_ids, "labels": [IGNORE] * len(prompt_ids) + target_ids})
    return features


def word_ids(tokenizer, task) -> list[list[int]]:
    return [tokenizer(word, add_special_tokens=False).input_ids for word in task.label_words]


def input_logits(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The logits of the input's own positions. peft's prompt tuning, P-tuning and CPT prepend their
    virtual tokens to a causal LM's input and return those positions' logits first."""
    return logits[:, logits.shape[1] - ids.shape[1] :]


def sequence_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of log p(label token) over each row's non-ignored positions; logits[:, t] predicts labels[:, t]."""
    logprobs = logits.float().log_softmax(-1)
    mask = labels != IGNORE
    picked = logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def classification_result(scores: torch.Tensor, examples, task) -> Evaluation:
    predictions, labels = scores.argmax(-1).tolist(), [e.label for e in examples]
    return Evaluation(compute_metrics(task.metrics, predictions, labels), predictions, labels)


@torch.no_grad()
def causal_score_labels(model, examples, setup: EvalSetup) -> Evaluation:
    words = word_ids(setup.tokenizer, setup.task)
    score = causal_score_single_tokens if all(len(word) == 1 for word in words) else causal_score_sequences
    return classification_result(score(model, examples, words, setup), examples, setup.task)


def causal_score_sequences(model, examples, words, setup: EvalSetup) -> torch.Tensor:
    """log p(word | prompt) for every example and label word: one sequence per pair."""
    tokenizer, device = setup.tokenizer, setup.device
    rows = []  # (example index, label index, ids, labels)
    for i, example in enumerate(examples):
        prompt_ids = tokenizer(prompt_text(example)).input_ids
        for c, word in enumerate(words):
            prompt, target = causal_pair(prompt_ids, word, setup.max_length)
            # shifted by one: position t of the logits predicts token t + 1
            rows.append((i, c, prompt + target, [IGNORE] * (len(prompt) - 1) + target + [IGNORE]))
    rows, _ = shortest_first(rows, lambda row: len(row[2]))  # each score goes to its (example, label) cell
    scores = torch.full((len(examples), len(words)), float("-inf"))
    for chunk in batches(rows, setup.batch_size):
        ids = pad([r[2] for r in chunk], pad_id(tokenizer))
        mask = pad([[1] * len(r[2]) for r in chunk], 0)
        logits = input_logits(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits, ids)
        values = sequence_logprobs(logits, pad([r[3] for r in chunk], IGNORE).to(device)).cpu()
        for (i, c, _, _), value in zip(chunk, values):
            scores[i, c] = value
    return scores


def causal_score_single_tokens(model, examples, words, setup: EvalSetup) -> torch.Tensor:
    """The same when every label word is one token: one pass over each prompt scores all of them."""
    tokenizer, device = setup.tokenizer, setup.device
    prompts = [tokenizer(prompt_text(e)).input_ids[-(setup.max_length - 1) :] for e in examples]
    prompts, order = shortest_first(prompts, len)
    tokens = torch.tensor([word[0] for word in words])
    scores = []
    for chunk in batches(prompts, setup.batch_size):
        ids, mask = pad(chunk, pad_id(tokenizer)), pad([[1] * len(p) for p in chunk], 0)
        logits = input_logits(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits, ids)
        last = logits[torch.arange(len(chunk)), torch.tensor([len(p) - 1 for p in chunk])].float().log_softmax(-1)
        scores.append(last[:, tokens.to(device)].cpu())
    return torch.stack(in_given_order(list(torch.cat(scores)), order))


def generation_settings(task) -> dict:
    settings = dict(task.get("generation") or {})
    return {
        "max_new_tokens": settings.get("max_new_tokens", 64),
        "num_beams": settings.get("num_beams", 1),
        "length_penalty": settings.get("length_penalty", 1.0),
        "do_sample": False,
    }


def new_tokens(generated: torch.Tensor, eos: int) -> list[list[int]]:
    """Each row's generated tokens up to and including its first end token."""
    rows = []
    for row in generated.tolist():
        rows.append(row[: row.index(eos) + 1] if eos in row else row)
    return rows


def generation_prompt(example, setup: EvalSetup, decoder_only: bool, max_new_tokens: int) -> list[int]:
    """The prompt's ids: a decoder's cut from its start to leave room for the new tokens; an encoder's truncated."""
    if decoder_only:
        return setup.tokenizer(prompt_text(example)).input_ids[-(setup.max_length - max_new_tokens) :]
    return setup.tokenizer(prompt_text(example), truncation=True, max_length=setup.max_length).input_ids


@torch.no_grad()
def generate_and_score(model, examples, setup: EvalSetup, decoder_only: bool) -> Evaluation:
    tokenizer, task, device = setup.tokenizer, setup.task, setup.device
    settings, eos, texts, generated_tokens = generation_settings(task), eos_id(tokenizer), [], 0
    started = time.perf_counter()
    for chunk in batches(examples, setup.batch_size):
        prompts = [generation_prompt(e, setup, decoder_only, settings["max_new_tokens"]) for e in chunk]
        ids = pad(prompts, pad_id(tokenizer), left=decoder_only)  # a decoder continues right after its prompt
        mask = pad([[1] * len(p) for p in prompts], 0, left=decoder_only)
        output = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            pad_token_id=pad_id(tokenizer),
            eos_token_id=eos,
            **settings,
        ).cpu()
        output = output[:, ids.shape[1] :] if decoder_only else output[:, 1:]  # drop the prompt / decoder start
        rows = new_tokens(output, eos)
        generated_tokens += sum(map(len, rows))
        texts += [tokenizer.decode(row, skip_special_tokens=True).strip() for row in rows]
    seconds = time.perf_counter() - started
    references = [list(e.references) for e in examples]
    timing = {
        "seconds": seconds,
        "new_tokens": generated_tokens,
        "examples": len(examples),
        "ms_per_token": 1000 * seconds / max(1, generated_tokens),
        **settings,
    }
    return Evaluation(compute_metrics(task.metrics, texts, references), texts, references, timing)


def causal_evaluate(model, examples, setup: EvalSetup) -> Evaluation:
    if task_type(setup.task) == "generation":
        return generate_and_score(model, examples, setup, decoder_only=True)
    return causal_score_labels(model, examples, setup)


# --- seq2seq ----------------------------------------------------------------------------------


def seq2seq_features(examples, tokenizer, task, max_length: int) -> list[dict]:
    check_prompted(task)
    features = []
    for example in examples:
        source = tokenizer(prompt_text(example), truncation=True, max_length=max_length).input_ids
        target = tokenizer(target_text(example, task).strip(), truncation=True, max_length=max_length).input_ids
        features.append({"input_ids": source, "labels": target})
    return features


@torch.no_grad()
def seq2seq_score_labels(model, examples, setup: EvalSetup) -> Evaluation:
    tokenizer, task, max_length, device = setup.tokenizer, setup.task, setup.max_length, setup.device
    words = [tokenizer(word.strip()).input_ids for word in task.label_words]  # with the end token, as trained
    rows = [
        (i, c, tokenizer(prompt_text(e), truncation=True, max_length=max_length).input_ids, words[c])
        for i, e in enumerate(examples)
        for c in range(len(words))
    ]
    rows, _ = shortest_first(rows, lambda row: len(row[2]))  # each score goes to its (example, label) cell
    scores = torch.full((len(examples), len(words)), float("-inf"))
    for chunk in batches(rows, setup.batch_size):
        ids, labels = pad([r[2] for r in chunk], pad_id(tokenizer)), pad([r[3] for r in chunk], IGNORE)
        mask = pad([[1] * len(r[2]) for r in chunk], 0)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).logits
        for (i, c, _, _), value in zip(chunk, sequence_logprobs(logits, labels.to(device)).cpu()):
            scores[i, c] = value
    return classification_result(scores, examples, task)


def seq2seq_evaluate(model, examples, setup: EvalSetup) -> Evaluation:
    if task_type(setup.task) == "generation":
        return generate_and_score(model, examples, setup, decoder_only=False)
    return seq2seq_score_labels(model, examples, setup)


CLASSIFIER = Format("classifier", True, classifier_features, classifier_collate, classifier_evaluate)
CAUSAL_LM = Format("causal_lm", False, causal_features, lm_collate, causal_evaluate)
SEQ2SEQ = Format("seq2seq", False, seq2seq_features, lm_collate, seq2seq_evaluate)
FORMATS = {"sequence_classification": CLASSIFIER, "causal_lm": CAUSAL_LM, "seq2seq_lm": SEQ2SEQ}


def get_format(auto_class: str, task) -> Format:
    if auto_class == "sequence_classification" and task_type(task) == "generation":
        raise ValueError(
            f"Task '{task.name}' is a generation task and the model is a classifier; "
            f"use a causal_lm or seq2seq_lm model (e.g. model=smollm2_135m)."
        )
    if task_type(task) not in ("classification", "generation"):
        raise ValueError(
            f"Unknown task type '{task_type(task)}' in task '{task.name}'; valid: classification, generation."
        )
    return FORMATS[auto_class]
