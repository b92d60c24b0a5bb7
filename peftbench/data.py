"""Task data: read a task's splits (local GLUE/SuperGLUE files or the hub), tokenize, batch."""

import csv
import hashlib
import io
import json
import math
import os
import random
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler

from peftbench.local_files import SPLITS, local_file


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
FORMATS = (*READERS, "json", "parquet")  # json: one JSON object per line, as jsonl


def local_path(task, data_dir: str, split: str) -> Path:
    path, local = local_file(task, data_dir, split), task.local
    if local.format not in FORMATS:
        raise ValueError(f"Unknown file format '{local.format}' for task '{task.name}'; valid: {', '.join(FORMATS)}.")
    return path


def stream_rows(path: str, fmt: str, columns: tuple[str, ...] | None, content: str):
    """The rows of a local file one at a time, parsed as read_tsv/read_csv/read_jsonl parse them (GLUE TSV
    without quote handling; quoted CSV fields across lines), without holding the file in memory. `content`
    (the file's SHA-256) is unused here: it is in datasets' cache key, so a changed file is read again."""
    try:
        with open(path, encoding="utf-8-sig" if fmt == "tsv" else "utf-8", newline="") as file:
            if fmt == "csv":
                yield from csv.DictReader(file)
                return
            for number, line in enumerate(file, start=1):
                if fmt == "tsv":
                    line = line.rstrip("\n").rstrip("\r")
                    if not line.strip():
                        continue
                    if columns is None:
                        columns = line.split("\t")
                        continue
                    yield dict(zip(columns, line.split("\t")))
                elif line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as error:
                        raise DataError(f"{path} line {number} is not JSON ({error.msg}).") from error
    except UnicodeDecodeError:
        read_text(Path(path))  # the whole file, once, for the sentence that names the byte and its offset
        raise


def read_local_dataset(task, data_dir: str, split: str):
    """A local split as a `datasets.Dataset` (Arrow, memory-mapped, cached by the file's content): parquet
    through datasets' own reader, text formats through stream_rows. The task's renamed fields are added."""
    import datasets

    path, local = local_path(task, data_dir, split), task.local
    stat = path.stat()
    fingerprint = file_fingerprint(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    cache_dir = str(cache_root() / "rows")
    if local.format == "parquet":
        rows = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=cache_dir)
    else:
        fmt = "jsonl" if local.format == "json" else local.format
        # a tuple: datasets splits list-valued generator arguments into shards
        columns = tuple(local.columns) if local.get("columns") else None
        kwargs = {"path": str(path), "fmt": fmt, "columns": columns, "content": fingerprint}
        if next(stream_rows(**kwargs), None) is None:
            check_rows([], path, task)  # no rows: one sentence, before datasets finds nothing to write
        datasets.disable_progress_bars()
        try:
            rows = datasets.Dataset.from_generator(stream_rows, gen_kwargs=kwargs, cache_dir=cache_dir)
        except datasets.exceptions.DatasetGenerationError as error:
            raise (error.__cause__ if isinstance(error.__cause__, DataError) else error) from None
        finally:
            datasets.enable_progress_bars()
    renames = dict(local.rename or {})
    if len(rows) and (absent := [column for column in renames.values() if column not in rows.column_names]):
        raise DataError(
            f"{path} has no column '{absent[0]}', which task '{task.name}' renames; "
            f"its columns: {', '.join(rows.column_names)}."
        )
    for field, column in renames.items():
        if field not in rows.column_names:
            rows = rows.add_column(field, rows[column])
    check_rows(rows.select(range(min(1, len(rows)))).to_list(), path, task)
    return rows


def cache_root() -> Path:
    """peftbench's cache of parsed rows and tokenized features (PEFTBENCH_CACHE_DIR, else ~/.cache/peftbench)."""
    return Path(os.environ.get("PEFTBENCH_CACHE_DIR") or Path.home() / ".cache" / "peftbench")


def read_local_split(task, data_dir: str, split: str) -> list[dict]:
    """A local split as a list of rows (the small evaluation split; benchmarks)."""
    return read_local_dataset(task, data_dir, split).to_list()


def read_hub_split(task, split: str):
    import datasets  # imported here: slow, and only needed without a data directory

    split = dict(task.hub.get("splits") or {}).get(split, split)  # e.g. E2E evaluates on the official test split
    return datasets.load_dataset(task.hub.path, task.hub.get("name"), split=split)


def label_reader(task):
    """raw label -> its id (a float score for regression), with the task's labels read from the config once."""
    if is_regression(task):
        return float
    labels, name = list(task.labels), task.name
    ids = {}
    for index, label in enumerate(labels):
        ids.setdefault(str(label).lower(), index)  # a repeated name is its first id

    def read(raw) -> int:
        key = str(raw).strip().lower()
        if key in ids:
            return ids[key]
        if key.lstrip("-").isdigit() and 0 <= int(key) < len(labels):
            return int(key)
        raise ValueError(f"Label {raw!r} of task '{name}' is not one of {labels} (or their ids).")

    return read


def label_id(raw, task) -> int | float:
    return label_reader(task)(raw)


def to_examples(rows, task) -> list[Example]:
    """The rows as Examples. The task's fields are read once: read per row from the config, they took
    most of the 9 s that SST-2's 67,349 training rows took."""
    templates, prompt, field = list(task.segments), task.get("prompt") or None, task.label_field
    generation = task_type(task) == "generation"
    to_label = None if generation else label_reader(task)  # a generation task's label is its reference text
    examples = []
    for row in rows:
        segments = tuple(template.format_map(row) for template in templates)
        text_prompt = prompt.format_map(row) if prompt else None
        raw = row[field]
        if generation:
            examples.append(Example(segments=segments, label=raw, prompt=text_prompt, references=(raw,)))
        else:
            examples.append(Example(segments=segments, label=to_label(raw), prompt=text_prompt))
    return examples


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


@dataclass
class Splits:
    """A task's data for one run: the training rows (a `datasets.Dataset`, memory-mapped: tokenized by
    train_features) and the evaluation split as Examples (dev, or the held-out part of train)."""

    task: object
    train: object  # datasets.Dataset of rows, the task's fields among its columns
    validation: list[Example]
    train_rows: list[int] | None = None  # the rows of `train` this run trains on; None: all

    def train_examples(self) -> list[Example]:
        """The training split as Examples (in memory: for benchmarks and small data)."""
        rows = self.train if self.train_rows is None else self.train.select(self.train_rows)
        return to_examples(rows, self.task)

    @property
    def train_size(self) -> int:
        return len(self.train) if self.train_rows is None else len(self.train_rows)


def load_task(task, data_dir: str | None, seed: int) -> Splits:
    """The training rows and the evaluation Examples; validation (dev, or a held-out part of train) is the
    evaluation split."""
    train = read_local_dataset(task, data_dir, "train") if data_dir else read_hub_split(task, "train")
    if data_dir:
        validation_rows = read_local_split(task, data_dir, "validation")
    else:
        validation_rows = read_hub_split(task, "validation").to_list()
    validation = to_examples(validation_rows, task)
    if task_type(task) == "classification":  # a bad label fails here, before any model is built
        for raw in train.unique(task.label_field):
            label_id(raw, task)
    chosen = None
    if task.get("heldout_fraction"):
        # Tuning on a held-out part of the training data keeps dev for the final number only.
        shuffled = random.Random(seed).sample(range(len(train)), len(train))
        cut = int(round(task.heldout_fraction * len(shuffled)))
        if not 0 < cut < len(shuffled):
            raise DataError(
                f"task.heldout_fraction={task.heldout_fraction} of {len(shuffled):,} training examples holds out "
                f"{cut:,}: it must leave at least one to evaluate on and one to train on."
            )
        validation = to_examples(train.select(shuffled[:cut]), task)
        chosen = shuffled[cut:]
    if task_type(task) == "generation":
        validation = group_references(validation)
    pool = chosen if chosen is not None else range(len(train))
    if task.max_train_samples is not None and task.max_train_samples < len(pool):
        # A seeded subset: the low-resource (K-shot) setting of the surveys.
        chosen = random.Random(seed).sample(list(pool) if chosen is not None else pool, task.max_train_samples)
    if task.max_eval_samples is not None:
        validation = validation[: task.max_eval_samples]
    return Splits(task, train, validation, chosen)


# Task keys that only choose rows or score them: the tokenized features do not depend on them.
NOT_IN_FEATURES = ("max_train_samples", "max_eval_samples", "heldout_fraction", "metrics", "main_metric", "generation")
FEATURES_VERSION = 1  # raise it when a format's features function changes: cached features are then made again


def tokenizer_identity(tokenizer) -> str:
    """What the tokenizer is (vocabulary, model, normalizer, added tokens), not how it was last called: a
    fast tokenizer keeps its last truncation and padding settings in its state, which are left out."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return f"{tokenizer.name_or_path}-{len(tokenizer)}"
    state = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
    # in the serialisation's own order (the vocabulary by id): sorting 30,000 keys took 26 of the 36 ms
    return hashlib.sha256(json.dumps(state).encode()).hexdigest()


def train_features(splits: Splits, featurize, format_name: str, tokenizer, max_length: int, data_identity: dict):
    """The run's training features and their lengths: every training row made into features by the format's
    `featurize(examples, tokenizer, task, max_length)` through `Dataset.map` (batched, written to an Arrow
    file: memory-mapped, never all in memory), cached between runs of the same data, task, tokenizer and
    length (other seeds and subsets of the same data reuse it), then the run's rows of them."""
    from omegaconf import OmegaConf

    task = splits.task
    fields = {k: v for k, v in OmegaConf.to_container(task, resolve=True).items() if k not in NOT_IN_FEATURES}
    identity = {
        "data": data_identity,
        "rows": splits.train._fingerprint,
        "task": fields,
        "format": format_name,
        "tokenizer": tokenizer_identity(tokenizer),
        "max_length": max_length,
        "version": FEATURES_VERSION,
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:20]

    def featurize_batch(batch: dict) -> dict:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        features = featurize(to_examples(rows, task), tokenizer, task, max_length)
        columns = {name: [feature[name] for feature in features] for name in features[0]}
        return columns | {"length": [len(feature["input_ids"]) for feature in features]}

    folder = cache_root() / "features"
    folder.mkdir(parents=True, exist_ok=True)
    features = splits.train.map(
        featurize_batch,
        batched=True,
        batch_size=1000,
        remove_columns=splits.train.column_names,
        cache_file_name=str(folder / f"{key}.arrow"),
        new_fingerprint=key,
        load_from_cache_file=True,
        desc=f"tokenizing {task.name}",
    )
    if splits.train_rows is not None:
        features = features.select(splits.train_rows)
    return features.remove_columns("length"), list(features["length"])


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
    features,
    collate,
    batch_size: int,
    shuffle: bool,
    seed: int,
    group_by_length: bool = False,
    lengths: list[int] | None = None,
) -> DataLoader:
    """Batches of `features` (a list, or a datasets.Dataset) padded by `collate` to their own longest
    sequence (dynamic padding); with `group_by_length`, batches of similar length (shuffled each epoch),
    from `lengths` where given (the input lengths, known without reading every feature)."""
    generator = torch.Generator().manual_seed(seed)
    if group_by_length and shuffle:
        lengths = lengths if lengths is not None else [len(feature["input_ids"]) for feature in features]
        batches = LengthGroupedBatches(lengths, batch_size, generator)
        return DataLoader(features, batch_sampler=batches, collate_fn=collate, generator=generator)
    return DataLoader(features, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator)
