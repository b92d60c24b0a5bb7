"""Task data: read a task's splits (local GLUE/SuperGLUE files or the hub), tokenize, batch."""

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

SPLITS = ("train", "validation")


@dataclass(frozen=True)
class Example:
    segments: tuple[str, ...]  # one or two texts, as the task's `segments` templates render them
    label: int | float  # class id, or a score for regression


def is_regression(task) -> bool:
    return task.labels is None


def num_labels(task) -> int:
    return 1 if is_regression(task) else len(task.labels)


def read_tsv(path: Path, columns) -> list[dict]:
    """GLUE TSV: split on newlines and tabs with no quote handling (sentences contain `"`)."""
    lines = [line for line in path.read_text(encoding="utf-8-sig").split("\n") if line.strip()]
    if columns is None:
        columns, lines = lines[0].rstrip("\r").split("\t"), lines[1:]
    return [dict(zip(columns, line.rstrip("\r").split("\t"))) for line in lines]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


READERS = {"tsv": lambda path, local: read_tsv(path, local.columns), "jsonl": lambda path, local: read_jsonl(path)}


def read_local_split(task, data_dir: str, split: str) -> list[dict]:
    local = task.local
    path = Path(data_dir) / local.dir / local.splits[split]
    if not path.is_file():
        raise FileNotFoundError(
            f"Task '{task.name}' needs {path}; data_dir '{data_dir}' must hold the GLUE/SuperGLUE "
            f"layout ({local.dir}/{local.splits[split]}), or set data_dir=null to load from the hub."
        )
    if local.format not in READERS:
        raise ValueError(f"Unknown file format '{local.format}' for task '{task.name}'; valid: {', '.join(READERS)}.")
    rows = READERS[local.format](path, local)
    renames = dict(local.rename or {})
    return [{**row, **{field: row[column] for field, column in renames.items()}} for row in rows]


def read_hub_split(task, split: str) -> list[dict]:
    import datasets  # imported here: slow, and only needed without a data directory

    return list(datasets.load_dataset(task.hub.path, task.hub.name, split=split))


def label_id(raw, task) -> int | float:
    if is_regression(task):
        return float(raw)
    names = [str(name).lower() for name in task.labels]
    key = str(raw).strip().lower()
    if key in names:
        return names.index(key)
    if key.lstrip("-").isdigit() and 0 <= int(key) < len(names):
        return int(key)
    raise ValueError(f"Label {raw!r} of task '{task.name}' is not one of {list(task.labels)} (or their ids).")


def to_example(row: dict, task) -> Example:
    segments = tuple(template.format_map(row) for template in task.segments)
    return Example(segments=segments, label=label_id(row[task.label_field], task))


def load_task(task, data_dir: str | None, seed: int) -> dict[str, list[Example]]:
    """The train and validation splits as Examples; validation (dev, or a held-out part of train) is
    the evaluation split."""
    splits = {}
    for split in SPLITS:
        rows = read_local_split(task, data_dir, split) if data_dir else read_hub_split(task, split)
        splits[split] = [to_example(row, task) for row in rows]
    if task.get("heldout_fraction"):
        # Tuning on a held-out part of the training data keeps dev for the final number only.
        shuffled = random.Random(seed).sample(splits["train"], len(splits["train"]))
        cut = int(round(task.heldout_fraction * len(shuffled)))
        splits["validation"], splits["train"] = shuffled[:cut], shuffled[cut:]
    if task.max_train_samples is not None and task.max_train_samples < len(splits["train"]):
        # A seeded subset: the low-resource (K-shot) setting of the surveys.
        splits["train"] = random.Random(seed).sample(splits["train"], task.max_train_samples)
    if task.max_eval_samples is not None:
        splits["validation"] = splits["validation"][: task.max_eval_samples]
    return splits


def tokenize(examples: list[Example], tokenizer, max_seq_length: int) -> list[dict]:
    columns = list(zip(*(example.segments for example in examples)))
    encoded = tokenizer(*columns, truncation=True, max_length=max_seq_length)
    return [
        {**{key: encoded[key][i] for key in encoded}, "labels": example.label}
        for i, example in enumerate(examples)
    ]


def make_loader(features: list[dict], tokenizer, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """Batches padded to their own longest sequence (dynamic padding)."""

    def collate(batch: list[dict]) -> dict:
        labels = torch.tensor([item["labels"] for item in batch])
        inputs = tokenizer.pad([{k: v for k, v in item.items() if k != "labels"} for item in batch], return_tensors="pt")
        return {**inputs, "labels": labels}

    generator = torch.Generator().manual_seed(seed)
    return DataLoader(features, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator)
