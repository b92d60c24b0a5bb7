"""Shared test fixtures: configs composed exactly as the CLI composes them, a tiny BERT, toy data."""

import gc
import os
import random
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from peftbench import CONF_DIR

# Tests never touch the network: the hub answers from the local cache only (a miss fails at once).
os.environ["HF_HUB_OFFLINE"] = "1"

if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):  # `make test` runs pytest -n auto
    import torch

    share = max(1, len(os.sched_getaffinity(0)) // workers)  # the cores shared, not each taken
    torch.set_num_threads(share)
    # The processes tests start (the CLI, launchers' jobs, fresh loaders) take the same share: a child taking
    # every core beside the other workers' tests waits on its own threads (a fresh process loading every
    # method's checkpoint took 31.5 s with 2 threads beside a busy core, 11.9 s with 1).
    os.environ["OMP_NUM_THREADS"] = str(share)

# Every test worker imports the recipe once; its startup objects then stay out of each run's collection.
import peftbench.recipe  # noqa: E402, F401
from peftbench.measure import freeze_startup_objects  # noqa: E402

freeze_startup_objects()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """What a test leaves alive (modules its runs imported, caches) joins the startup objects: each run's
    collection before measuring memory then scans only what that run made, as in a fresh process (86,000
    objects left by earlier tests made it 45 ms per run)."""
    gc.collect()
    gc.freeze()


REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA_DIR = Path(os.environ.get("PEFTBENCH_DATA_DIR") or REPO_ROOT.parent / "shared" / "data")

# A tiny, fast run: the 2-layer 32-wide BERT, no tracker, a learning rate at which a few steps show.
TINY_RUN = [
    "model=tiny_bert",
    "tracker=none",
    "trainer.batch_size=8",
    "trainer.epochs=3",
    "trainer.lr=1e-2",
    "trainer.warmup_ratio=0.0",
    "trainer.log_every_steps=1",
    "num_threads=1",
    "measure.latency_repeats=3",
    "measure.latency_warmup=1",
    "measure.latency_warmup_seconds=0",
    "measure.warmup_steps=2",
    "measure.latency_seq_length=32",  # the three latency models timed on short inputs: the test is that they run
    "measure.forgetting_tokens=512",  # language models: four chunks of general text, not sixty-four
]


def compose_config(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def write_toy_rte(root: Path, n_train: int = 64, n_eval: int = 32, seed: int = 0) -> Path:
    """An RTE-layout data directory with a learnable rule: 'good' in sentence 2 means entailment.
    Sentences contain quote characters, as the real GLUE files do."""
    rng = random.Random(seed)
    words = ["cat", "dog", "tree", "river", "house", '"quoted"', "car", "sun"]

    def rows(n):
        lines = ["index\tsentence1\tsentence2\tlabel"]
        for i in range(n):
            label = i % 2 == 0
            premise = " ".join(rng.choices(words, k=2))
            hypothesis = " ".join(["good" if label else "bad"] * 3)
            lines.append(f"{i}\t{premise}\t{hypothesis}\t{'entailment' if label else 'not_entailment'}")
        return "\n".join(lines) + "\n"

    (root / "rte").mkdir(parents=True, exist_ok=True)
    (root / "rte" / "train.tsv").write_text(rows(n_train))
    (root / "rte" / "dev.tsv").write_text(rows(n_eval))
    return root


def write_toy_e2e(root: Path, n_train: int = 48, n_eval: int = 8, seed: int = 0) -> Path:
    """An E2E-layout directory (mr, ref CSVs) with a learnable mapping: name[X], food[Y] -> 'X serves Y
    food.'; each evaluation input has two references, to be grouped."""
    rng = random.Random(seed)
    names, foods = ["alpha", "delta", "omega", "sigma"], ["french", "italian", "chinese", "indian"]

    def rows(n, references):
        lines = ["mr,ref"]
        pairs = [(name, food) for name in names for food in foods]
        for name, food in (
            rng.sample(pairs, n) if references > 1 else rng.choices(pairs, k=n)
        ):  # distinct inputs to evaluate
            lines += [
                f'"name[{name}], food[{food}]",{name} serves {food} food.',
                f'"name[{name}], food[{food}]",{name} has {food} food.',
            ][:references]
        return "\n".join(lines) + "\n"

    (root / "e2e_nlg").mkdir(parents=True, exist_ok=True)
    (root / "e2e_nlg" / "devset.csv").write_text(rows(n_train, 1))
    (root / "e2e_nlg" / "testset_w_refs.csv").write_text(rows(n_eval, 2))
    return root


@pytest.fixture(scope="session")
def toy_data_dir(tmp_path_factory) -> Path:
    return write_toy_e2e(write_toy_rte(tmp_path_factory.mktemp("data")))


@pytest.fixture
def tiny_run_config(toy_data_dir, tmp_path):
    """compose(method, extra overrides, task=rte) -> a config for a tiny run on the toy data (RTE or E2E)."""

    def make(method: str, *overrides: str, task: str = "rte"):
        return compose_config(
            [
                f"+method={method}",
                f"+task={task}",
                f"data_dir={toy_data_dir}",
                f"results_dir={tmp_path / 'results'}",
                f"checkpoint_dir={tmp_path / 'checkpoints'}",
                *TINY_RUN,
                *overrides,
            ]
        )

    return make
