"""Task data: read a task's splits (local GLUE/SuperGLUE files or the hub), tokenize, batch."""

import csv
import hashlib
import io
import json
import math
import random
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler

SPLITS = ("train", "validation")


class DataError(ValueError):
    """A task's data that cannot be used as configured (a missing column, an empty or non-UTF-8 file)."""


@dataclass(frozen=True)
class Example:
    segments: tuple[str, ...]  # one or two texts, as the task's `segments` templates render them
    label: int | float | str  # class id, a score (regression), or the target text (generation)
    prompt: str | None = None  # the task's `prompt` template rendered: a language model's input
    references: tuple[str, ...] = ()  # generation: every reference text of this input


def task_type(task) -> str:
    """classification (GLUE-style, labels or a score) or generation (a target text)."""
    return task.get("type") or "classification"


def is_regression(task) -> bool:
    return task_type(task) == "classification" and task.labels is None


def num_labels(task) -> int:
    """Outputs of a new classification head (1: regression); generation tasks make none (2 is the config default)."""
    if task_type(task) == "generation":
        return 2
    return 1 if is_regression(task) else len(task.labels)


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """The file's text as it is (line ends untranslated: a quoted CSV field keeps its own)."""
    try:
        return path.read_bytes().decode(encoding)
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start}); "
            f"save it as UTF-8."
        ) from error


def read_tsv(path: Path, columns) -> list[dict]:
    """GLUE TSV: split on newlines and tabs with no quote handling (sentences contain `"`)."""
    lines = [line for line in read_text(path, "utf-8-sig").split("\n") if line.strip()]
    if not lines:
        return []
    if columns is None:
        columns, lines = lines[0].rstrip("\r").split("\t"), lines[1:]
    return [dict(zip(columns, line.rstrip("\r").split("\t"))) for line in lines]


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise DataError(f"{path} line {number} is not JSON ({error.msg}).") from error
    return rows


def read_csv(path: Path) -> list[dict]:
    """CSV with a header line; quoted fields may span lines (E2E, SAMSum)."""
    return list(csv.DictReader(io.StringIO(read_text(path), newline="")))


def template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def fields_read(task) -> list[str]:
    """The columns a task's templates and label read from every row."""
    needed = set().union(*(template_fields(t) for t in task.segments))
    if task.get("prompt"):
        needed |= template_fields(task.prompt)
    return sorted(needed | {task.label_field})


def check_rows(rows: list[dict], path: Path, task) -> None:
    if not rows:
        raise DataError(
            f"{path} holds no examples (an empty file, or a header alone); task '{task.name}' needs at least one row."
        )
    missing = [name for name in fields_read(task) if name not in rows[0]]
    if missing:
        raise DataError(
            f"{path} has no column '{missing[0]}', which task '{task.name}' reads; "
            f"its columns: {', '.join(map(str, rows[0]))}."
        )


@lru_cache(maxsize=64)
def file_fingerprint(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def identity(task, data_dir: str | None) -> dict:
    """What a run's data is, for its config hash: each local file's size and SHA-256 (not where it
    lies), or the hub dataset's name."""
    if not data_dir:
        return {
            "source": "hub",
            "path": task.hub.path,
            "name": task.hub.get("name"),
            "splits": dict(task.hub.get("splits") or {}),
        }
    files = {}
    for split in SPLITS:
        path = Path(data_dir) / task.local.dir / task.local.splits[split]
        if path.is_file():
            stat = path.stat()
            files[split] = {
                "file": f"{task.local.dir}/{task.local.splits[split]}",
                "bytes": stat.st_size,
                "sha256": file_fingerprint(str(path.resolve()), stat.st_size, stat.st_mtime_ns),
            }
        else:
            files[split] = None  # reading it fails with the path
    return {"source": "local", "files": files}


READERS = {
    "tsv": lambda path, local: read_tsv(path, local.columns),
    "jsonl": lambda path, local: read_jsonl(path),
    "csv": lambda path, local: read_csv(path),
}


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
    if rows and (absent := [column for column in renames.values() if column not in rows[0]]):
        raise DataError(
            f"{path} has no column '{absent[0]}', which task '{task.name}' renames; "
            f"its columns: {', '.join(map(str, rows[0]))}."
        )
    rows = [{**row, **{field: row[column] for field, column in renames.items()}} for row in rows]
    check_rows(rows, path, task)
    return rows


def read_hub_split(task, split: str) -> list[dict]:
    import datasets  # imported here: slow, and only needed without a data directory

    split = dict(task.hub.get("splits") or {}).get(split, split)  # e.g. E2E evaluates on the official test split
    return list(datasets.load_dataset(task.hub.path, task.hub.get("name"), split=split))


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
    prompt = task.prompt.format_map(row) if task.get("prompt") else None
    if task_type(task) == "generation":
        return Example(
            segments=segments, label=row[task.label_field], prompt=prompt, references=(row[task.label_field],)
        )
    return Example(segments=segments, label=label_id(row[task.label_field], task), prompt=prompt)


def group_references(examples: list[Example]) -> list[Example]:
    """One example per distinct input, holding all its references in order (E2E has several per meaning
    representation; the official scorer groups them the same way)."""
    grouped: dict[tuple, Example] = {}
    for example in examples:
        key = (example.segments, example.prompt)
        if key in grouped:
            first = grouped[key]
            grouped[key] = Example(first.segments, first.label, first.prompt, first.references + example.references)
        else:
            grouped[key] = example
    return list(grouped.values())


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
    if task_type(task) == "generation":
        splits["validation"] = group_references(splits["validation"])
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
        {**{key: encoded[key][i] for key in encoded}, "labels": example.label} for i, example in enumerate(examples)
    ]


MEGA_BATCH = 50  # batches per length-sorted group (transformers' LengthGroupedSampler uses 50 too)


class LengthGroupedBatches(Sampler[list[int]]):
    """Batches of examples of similar length, in a new random order every epoch, as the transformers
    Trainer's `group_by_length`: a shuffled order is cut into groups of MEGA_BATCH batches, each group
    sorted by length and cut into batches, and the batches are shuffled. Every example comes once per
    epoch; a batch pads to its own longest example, so little is padding."""

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator):
        self.lengths, self.batch_size, self.generator = lengths, batch_size, generator

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        group_size = MEGA_BATCH * self.batch_size
        batches = []
        for start in range(0, len(order), group_size):
            group = sorted(order[start : start + group_size], key=self.lengths.__getitem__, reverse=True)
            batches += [group[i : i + self.batch_size] for i in range(0, len(group), self.batch_size)]
        for index in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[index]


def make_loader(
    features: list[dict], collate, batch_size: int, shuffle: bool, seed: int, group_by_length: bool = False
) -> DataLoader:
    """Batches padded by `collate` to their own longest sequence (dynamic padding); with
    `group_by_length`, batches of similar length (shuffled each epoch)."""
    generator = torch.Generator().manual_seed(seed)
    if group_by_length and shuffle:
        lengths = [len(feature["input_ids"]) for feature in features]
        batches = LengthGroupedBatches(lengths, batch_size, generator)
        return DataLoader(features, batch_sampler=batches, collate_fn=collate, generator=generator)
    return DataLoader(features, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator)
