"""One run on two processes (torchrun, gloo on CPU: the launch that accelerate makes on GPUs) writes one
record, and learns what one process learns from the same global batches."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from peftbench import records

from conftest import REPO_ROOT, TINY_RUN

# No dropout anywhere: two processes draw other random masks than one does, and nothing else may differ.
DETERMINISTIC = [
    "+model.architecture.hidden_dropout_prob=0",
    "+model.architecture.attention_probs_dropout_prob=0",
    "method.dropout=0",
    "trainer.epochs=2",
    "trainer.batch_size=8",
    "tracker=none",
    "checkpoint_dir=null",
]


def overrides_for(data_dir: Path, results: Path) -> list[str]:
    return ["+method=lora", "+task=rte", f"data_dir={data_dir}", f"results_dir={results}", *TINY_RUN, *DETERMINISTIC]


def launch(processes: int, data_dir: Path, results: Path, workdir: Path) -> subprocess.CompletedProcess:
    overrides = [*overrides_for(data_dir, results), f"hydra.run.dir={workdir}/outputs/${{run_uid:}}"]
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--standalone", f"--nproc_per_node={processes}", "-m", "peftbench", *overrides]
    environment = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=workdir, env=environment)


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_write_one_record_equal_to_one_process_on_the_same_global_batches(toy_data_dir, tmp_path):
    from peftbench.recipe import run

    from conftest import compose_config

    # one process: the run as the CLI makes it (torchrun with one process takes the same path, WORLD_SIZE=1)
    one = run(compose_config(overrides_for(toy_data_dir, tmp_path / "results-1"))).record
    finished = launch(2, toy_data_dir, tmp_path / "results-2", tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    (two,) = records.read_records(tmp_path / "results-2")  # exactly one record, from process 0
    assert two["status"] == "ok" and two["run"]["processes"] == 2 and one["run"]["processes"] == 1
    assert two["metrics"]["final"]["accuracy"] == pytest.approx(one["metrics"]["final"]["accuracy"], abs=1e-6)
    assert two["metrics"]["last_loss"] == pytest.approx(one["metrics"]["last_loss"], rel=1e-4)
    assert two["predictions"] == one["predictions"]  # the whole evaluation set, once each
    assert len(two["predictions"]["predictions"]) == one["data"]["eval_examples"]
    assert two["time"]["train_steps"] == one["time"]["train_steps"]
    # throughput counts the examples of both processes: the global batches
    assert two["throughput"]["measured_samples"] == one["throughput"]["measured_samples"] > 0
    assert json.dumps(two["params"]) == json.dumps(one["params"])


@pytest.mark.distributed
def test_a_global_batch_the_processes_cannot_split_is_refused_in_one_sentence(toy_data_dir, tmp_path, monkeypatch):
    from peftbench import validate

    from conftest import compose_config

    monkeypatch.setenv("WORLD_SIZE", "3")
    cfg = compose_config(["+method=lora", "+task=rte", "model=tiny_bert", "trainer.batch_size=8"])
    with pytest.raises(validate.ConfigError, match=r"^trainer.batch_size=8 cannot be split across 3 processes; "):
        validate.validate(cfg)
