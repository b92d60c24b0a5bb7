"""The options that make runs faster change how fast, never what is learned from or what is measured:
length-grouped batches see every example once per epoch, evaluation in length order gives each example
its own prediction, and mixed precision trains and says so in the record."""

import random

import pytest
import torch

from peftbench import data, formats
from peftbench.plan import apply_method, build_base, plan_run
from peftbench.recipe import run

from conftest import compose_config


def random_lengths(count: int, longest: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(3, longest) for _ in range(count)]


def features_of_lengths(lengths: list[int]) -> list[dict]:
    return [
        {"input_ids": [index] * length, "attention_mask": [1] * length, "labels": index % 2}
        for index, length in enumerate(lengths)
    ]


def collate_ids(batch: list[dict]) -> dict:
    width = max(len(item["input_ids"]) for item in batch)
    return {
        "ids": [item["input_ids"][0] for item in batch],
        "positions": width * len(batch),
        "real": sum(len(item["input_ids"]) for item in batch),
    }


def epochs_of(loader, count: int) -> list[list[int]]:
    return [[index for batch in loader for index in batch["ids"]] for _ in range(count)]


@pytest.mark.parametrize("size", [1, 37, 800, 1001])
def test_length_grouped_batches_hold_every_example_once_per_epoch(size):
    lengths = random_lengths(size, 128, seed=size)
    loader = data.make_loader(
        features_of_lengths(lengths), collate_ids, 16, shuffle=True, seed=0, group_by_length=True
    )
    first, second = epochs_of(loader, 2)
    assert sorted(first) == sorted(second) == list(range(size))
    assert len(loader) == -(-size // 16) == sum(1 for _ in loader)
    if size > 16:
        assert first != second  # a new order every epoch


def test_length_grouped_batches_pad_little_and_follow_the_seed():
    lengths = random_lengths(2000, 128, seed=1)
    features = features_of_lengths(lengths)

    def padding(group_by_length: bool, seed: int = 0) -> float:
        loader = data.make_loader(features, collate_ids, 16, shuffle=True, seed=seed, group_by_length=group_by_length)
        batches = list(loader)
        return 1 - sum(b["real"] for b in batches) / sum(b["positions"] for b in batches)

    assert padding(False) > 0.4 and padding(True) < 0.05
    grouped = [
        data.make_loader(features, collate_ids, 16, shuffle=True, seed=seed, group_by_length=True)
        for seed in (0, 0, 1)
    ]
    orders = [epochs_of(loader, 1)[0] for loader in grouped]
    assert orders[0] == orders[1] != orders[2]


def test_length_grouped_order_resumes_from_the_generator_state():
    """A resumed run restores the loader's generator state (trainer.resume): the same epoch order follows."""
    lengths = random_lengths(100, 64, seed=2)
    loader = data.make_loader(features_of_lengths(lengths), collate_ids, 8, shuffle=True, seed=3, group_by_length=True)
    state = loader.generator.get_state()
    expected = epochs_of(loader, 1)[0]
    loader.generator.set_state(state)
    assert epochs_of(loader, 1)[0] == expected


@pytest.mark.parametrize("task", ["rte", "stsb"])
def test_evaluation_in_length_order_gives_each_example_its_own_prediction(task, tmp_path):
    """Sorted evaluation batches against one example per batch (no padding at all), in a shuffled order."""
    cfg = compose_config([f"+task={task}", "+method=lora", "model=tiny_bert", "tracker=none"])
    plan = plan_run(cfg)
    torch.manual_seed(0)
    model, tokenizer = build_base(plan)
    model = apply_method(model, plan).eval()
    rng = random.Random(0)
    words = ["cat", "dog", "tree", "river", "a", "house", "the", "sun"]
    label = (lambda i: i % 2) if task == "rte" else (lambda i: float(i % 5))
    examples = [
        data.Example(segments=(" ".join(rng.choices(words, k=rng.randint(1, 30))), "good"), label=label(i))
        for i in range(40)
    ]
    cpu = torch.device("cpu")
    sorted_batches = formats.classifier_evaluate(model, examples, formats.EvalSetup(tokenizer, cfg.task, 64, 8, cpu))
    one_by_one = formats.classifier_evaluate(model, examples, formats.EvalSetup(tokenizer, cfg.task, 64, 1, cpu))
    assert sorted_batches.labels == [float(e.label) if task == "stsb" else e.label for e in examples]
    assert sorted_batches.predictions == pytest.approx(one_by_one.predictions, abs=1e-5)
    assert sorted_batches.metrics == pytest.approx(one_by_one.metrics, abs=1e-5)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_records_its_precision(precision, tiny_run_config):
    output = run(tiny_run_config("lora", f"trainer.precision={precision}", "trainer.group_by_length=true"))
    record = output.record
    assert record["status"] == "ok" and record["throughput"]["precision"] == precision
    assert record["config"]["trainer"]["precision"] == precision
    assert output.losses[-1] < output.losses[0]  # it learns the toy rule
    trainable = [p for p in output.model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)  # autocast: weights stay fp32
    assert 0 <= record["throughput"]["padding_share"] < 1


def test_the_record_splits_the_wall_time_into_its_phases(tiny_run_config):
    timing = run(tiny_run_config("lora", "trainer.epochs=1")).record["time"]
    phases = timing["phases"]
    assert list(phases) == [
        "setup",
        "data_read",
        "model_build",
        "tokenize",
        "method_start",
        "train_and_evaluate",
        "memory_and_metrics",
        "latency",
        "forgetting",  # a language-model measurement: next to nothing on a classifier
        "checkpoint",
    ]
    assert all(seconds >= 0 for seconds in phases.values())
    assert sum(phases.values()) <= timing["wall_seconds"]
    assert phases["train_and_evaluate"] >= timing["train_seconds"] + timing["eval_seconds"] - 1e-3
    assert timing["before_run_seconds"] > 0
