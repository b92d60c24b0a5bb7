"""Reading task files, labels, subsets and metrics."""

import collections

import pytest

from peftbench.data import DataError, label_id, load_task, read_tsv, stream_rows, to_examples
from peftbench.metrics import compute_metrics, is_better

from conftest import compose_config


def task_cfg(name: str, *overrides: str):
    return compose_config(["+method=lora", f"+task={name}", *overrides]).task


def test_tsv_is_read_without_quote_handling(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text('\ufeffQuality\t#1 String\n1\t"He said so.\n0\tplain "quoted" text\n')
    rows = read_tsv(path, columns=None)
    assert rows == [
        {"Quality": "1", "#1 String": '"He said so.'},
        {"Quality": "0", "#1 String": 'plain "quoted" text'},
    ]
    assert list(stream_rows(str(path), "tsv", None, content="")) == rows  # the datasets path reads it the same


def test_headerless_tsv_takes_columns_from_the_task(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("gj04\t1\t\tThe sailors rode.")  # no header, no trailing newline: GLUE's CoLA dev.tsv
    rows = read_tsv(path, list(task_cfg("cola").local.columns))
    assert rows == [{"source": "gj04", "label": "1", "original_mark": "", "sentence": "The sailors rode."}]
    assert list(stream_rows(str(path), "tsv", tuple(task_cfg("cola").local.columns), content="")) == rows


@pytest.mark.parametrize(
    "task, raw, expected",
    [
        ("rte", "entailment", 0),
        ("rte", "not_entailment", 1),
        ("rte", 1, 1),
        ("mrpc", "1", 1),
        ("wic", True, 1),
        ("wic", False, 0),
        ("cb", "neutral", 2),
        ("stsb", "3.800", 3.8),
        ("rte", " Entailment ", 0),
        ("cola", "-0", 0),
    ],
)
def test_labels_map_to_ids(task, raw, expected):
    """label_id, and the Examples that to_examples builds with the same answers looked up at once."""
    cfg = task_cfg(task)
    assert label_id(raw, cfg) == expected
    row = collections.defaultdict(str, {cfg.label_field: raw})  # the label; empty text for the segments
    (example,) = to_examples([row], cfg)
    assert example.label == expected and type(example.label) is type(expected)


@pytest.mark.parametrize(
    "to_label", [label_id, lambda raw, task: to_examples([collections.defaultdict(str, label=raw)], task)]
)
def test_unknown_label_names_the_choices(to_label):
    with pytest.raises(
        ValueError, match=r"Label 'maybe' of task 'rte' is not one of \['entailment', 'not_entailment'\]"
    ):
        to_label("maybe", task_cfg("rte"))


def test_train_subset_is_seeded(toy_data_dir):
    task = task_cfg("rte", "task.max_train_samples=10")
    first, again, other = (load_task(task, str(toy_data_dir), seed).train_examples() for seed in (1, 1, 2))
    assert len(first) == 10 and first == again and first != other


@pytest.mark.parametrize("fraction", ["0.0001", "0.9999"])
def test_a_held_out_fraction_that_leaves_either_side_empty_is_refused(toy_data_dir, fraction):
    with pytest.raises(DataError, match=rf"task.heldout_fraction={fraction} of .* training examples holds out"):
        load_task(task_cfg("rte", f"task.heldout_fraction={fraction}"), str(toy_data_dir), seed=0)


def test_missing_data_file_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Task 'rte' needs .*rte/train.tsv"):
        load_task(task_cfg("rte"), str(tmp_path), seed=0)


def test_metrics_as_glue_defines_them():
    labels, predictions = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    metrics = compute_metrics(["accuracy", "f1", "matthews_corr"], predictions, labels)
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["f1"] == pytest.approx(2 / 3)  # positive class: precision 2/3, recall 2/3
    assert metrics["matthews_corr"] == pytest.approx(1 / 6)  # (tp*tn - fp*fn)/sqrt(...) = (2-1)/6
    correlations = compute_metrics(["pearson", "spearman"], [1.0, 2.0, 3.0, 5.0], [1.0, 2.0, 3.0, 4.0])
    assert correlations["spearman"] == pytest.approx(1.0) and 0.95 < correlations["pearson"] < 1.0


def test_unknown_metric_and_direction():
    with pytest.raises(ValueError, match="Unknown metric"):
        compute_metrics(["blue"], [1], [1])
    assert is_better("accuracy", 0.6, 0.5) and not is_better("accuracy", 0.4, 0.5)


def test_hub_rows_map_like_local_rows(monkeypatch):
    """Without a data directory tasks load from the hub; its rows use the canonical field names."""
    import datasets

    calls = []

    def fake_load_dataset(path, name, split):
        calls.append((path, name, split))
        return datasets.Dataset.from_list([{"sentence1": "A man.", "sentence2": "A person.", "label": 1, "idx": 0}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    splits = load_task(task_cfg("mrpc"), None, seed=0)
    assert calls == [("nyu-mll/glue", "mrpc", "train"), ("nyu-mll/glue", "mrpc", "validation")]
    assert splits.validation[0].segments == ("A man.", "A person.") and splits.validation[0].label == 1


def tiny_tokenizer():
    from peftbench.plan import build_base, plan_run

    from conftest import compose_config as compose

    return build_base(plan_run(compose(["+method=bitfit", "+task=rte", "model=tiny_bert"])))[1]


def test_train_features_are_the_formats_features_and_are_cached(toy_data_dir, tmp_path, monkeypatch):
    """Dataset.map makes the same features as the format's function on the Examples; a second run (another
    seed's subset of the same data) reads them from the cache without tokenizing again."""
    from peftbench import data, formats

    monkeypatch.setenv("PEFTBENCH_CACHE_DIR", str(tmp_path / "cache"))
    tokenizer, task = tiny_tokenizer(), task_cfg("rte", "task.max_train_samples=20")
    splits = load_task(task, str(toy_data_dir), seed=0)
    calls = []

    def counted(examples, *args):
        calls.append(len(examples))
        return formats.classifier_features(examples, *args)

    identity = data.identity(task, str(toy_data_dir))
    features, lengths = data.train_features(splits, counted, "classifier", tokenizer, 64, identity)
    expected = formats.classifier_features(splits.train_examples(), tokenizer, task, 64)
    assert [dict(f) for f in features] == expected and lengths == [len(f["input_ids"]) for f in expected]
    assert sum(calls) == 64  # every training row once, the run's 20 chosen after
    other_seed = load_task(task, str(toy_data_dir), seed=1)
    again, _ = data.train_features(other_seed, counted, "classifier", tokenizer, 64, identity)
    assert sum(calls) == 64 and [dict(f) for f in again] == formats.classifier_features(
        other_seed.train_examples(), tokenizer, task, 64
    )
    data.train_features(splits, counted, "classifier", tokenizer, 32, identity)  # another length: made again
    assert sum(calls) == 128


def test_tokenizer_identity_is_what_it_tokenizes_not_how_it_was_last_called():
    """The features cache key: the same after a call that sets truncation and padding, another once a token is
    added, and the same in a fresh load (the serialisation's order is the vocabulary's, not a hash map's)."""
    from peftbench import data

    tokenizer = tiny_tokenizer()
    before = data.tokenizer_identity(tokenizer)
    tokenizer(["a cat", "a dog sat"], truncation=True, max_length=4, padding="max_length")
    assert data.tokenizer_identity(tokenizer) == before == data.tokenizer_identity(tiny_tokenizer())
    tokenizer.add_tokens(["<peftbench-new>"])
    assert data.tokenizer_identity(tokenizer) != before


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "parquet"])
def test_local_files_of_every_format_load_as_datasets(fmt, tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("PEFTBENCH_CACHE_DIR", str(tmp_path / "cache"))
    rows = pd.DataFrame({"text": ['a "quoted", line\nacross lines', "plain"], "label": ["pos", "neg"]})
    (tmp_path / "mine").mkdir()
    for split in ("train", "dev"):
        path = tmp_path / "mine" / f"{split}.{fmt}"
        if fmt == "csv":
            rows.to_csv(path, index=False)
        elif fmt == "parquet":
            rows.to_parquet(path)
        else:
            rows.to_json(path, orient="records", lines=True)
    task = task_cfg("sst2")
    task.local.dir, task.local.format = "mine", fmt
    task.local.splits = {"train": f"train.{fmt}", "validation": f"dev.{fmt}"}
    task.segments, task.labels, task.prompt = ["{text}"], ["neg", "pos"], None
    splits = load_task(task, str(tmp_path), seed=0)
    assert [e.segments[0] for e in splits.train_examples()] == list(rows["text"])
    assert [e.label for e in splits.validation] == [1, 0]
