"""The real GLUE/SuperGLUE files: split sizes and label sets as ../shared/data/SOURCES.md states."""

from collections import Counter

import pytest

from peftbench.data import load_task

from conftest import REAL_DATA_DIR, compose_config

pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(not REAL_DATA_DIR.is_dir(), reason=f"real data directory {REAL_DATA_DIR} is absent"),
]

# task -> (train rows, dev rows, dev label counts by class id), from SOURCES.md
EXPECTED = {
    "rte": (2490, 277, {0: 146, 1: 131}),
    "mrpc": (3668, 408, {1: 279, 0: 129}),
    "cola": (8551, 1043, {1: 721, 0: 322}),
    "sst2": (67349, 872, {1: 444, 0: 428}),
    "cb": (250, 56, {0: 23, 1: 28, 2: 5}),
    "wic": (5428, 638, None),  # SOURCES.md gives no val label counts for WiC
}
TRAIN_LABELS = {
    "rte": {0: 1249, 1: 1241},
    "mrpc": {1: 2474, 0: 1194},
    "cola": {1: 6023, 0: 2528},
    "sst2": {1: 37569, 0: 29780},
    "cb": {0: 115, 1: 119, 2: 16},
    "wic": {0: 2714, 1: 2714},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_classification_task_files(name):
    task = compose_config(["+method=lora", f"+task={name}"]).task
    splits = load_task(task, str(REAL_DATA_DIR), seed=0)
    n_train, n_dev, dev_labels = EXPECTED[name]
    assert (len(splits.train_examples()), len(splits.validation)) == (n_train, n_dev)
    assert Counter(e.label for e in splits.train_examples()) == TRAIN_LABELS[name]
    if dev_labels is not None:
        assert Counter(e.label for e in splits.validation) == dev_labels
    assert all(len(e.segments) == len(task.segments) and all(e.segments) for e in splits.validation)


def test_stsb_scores_are_regression_targets():
    task = compose_config(["+method=lora", "+task=stsb"]).task
    splits = load_task(task, str(REAL_DATA_DIR), seed=0)
    assert (len(splits.train_examples()), len(splits.validation)) == (5749, 1500)
    scores = [e.label for e in splits.validation]
    assert min(scores) == 0.0 and max(scores) == 5.0 and all(isinstance(s, float) for s in scores)


def test_quotes_survive_in_rte():
    task = compose_config(["+method=lora", "+task=rte"]).task
    texts = [s for e in load_task(task, str(REAL_DATA_DIR), seed=0).train_examples() for s in e.segments]
    assert sum('"' in text for text in texts) > 0


@pytest.mark.slow
def test_default_model_trains_on_real_rte(tmp_path):
    """The default path end to end: bundled pretrained MiniLM, real RTE files, LoRA, a few steps."""
    from peftbench.recipe import run

    cfg = compose_config(
        [
            "+method=lora",
            "+task=rte",
            f"data_dir={REAL_DATA_DIR}",
            f"results_dir={tmp_path}",
            "checkpoint_dir=null",
            "tracker=none",
            "trainer.max_steps=4",
            "task.max_eval_samples=32",
            "measure.latency_repeats=3",
            "measure.latency_warmup_seconds=0",
            "num_threads=1",
        ]
    )
    record = run(cfg).record
    assert (
        record["status"] == "ok" and record["data"]["train_examples"] == 2490 and record["data"]["eval_examples"] == 32
    )
    assert record["params"]["trainable"] == 6 * 2 * (2 * 8 * 384) + 384 * 2 + 2  # LoRA r=8 on q, v + head
    assert record["params"]["total"] == 22_713_216 + 770 + 73_728
