"""`python -m peftbench` as a user types it (subprocess)."""

import json
import os
import subprocess
import sys

import pytest

from peftbench import CONF_DIR
from peftbench.cli import preflight

from conftest import REPO_ROOT, TINY_RUN

METHOD_NAMES = ", ".join(sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml")))
TASK_NAMES = ", ".join(sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml")))


def peftbench(*arguments: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "peftbench", *arguments],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_cli_runs_and_writes_a_record(toy_data_dir, tmp_path):
    result = peftbench(
        "+method=lora",
        "+task=rte",
        "method.r=4",
        "trainer.epochs=1",
        "seed=3",
        f"hydra.run.dir={tmp_path / 'hydra'}",
        *TINY_RUN,
        env_extra={"PEFTBENCH_DATA_DIR": str(toy_data_dir), "PEFTBENCH_RESULTS_DIR": str(tmp_path / "results")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (path,) = (tmp_path / "results" / "rte" / "tiny_bert" / "lora").glob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok"
    assert (record["config"]["method"]["r"], record["run"]["seed"]) == (4, 3)
    assert record["config"]["data_dir"] == str(toy_data_dir)
    assert "trainable parameters" in result.stderr  # the summary table


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((), f"error: no method given; add +method=<name>, available methods: {METHOD_NAMES}."),
        (
            ("+method=lora",),
            "error: no task given; add +task=<name>, available tasks: "
            "cb, cola, e2e_nlg, mrpc, rte, samsum, sst2, stsb, wic.",
        ),
        (("+method=loar", "+task=rte"), f"error: unknown method 'loar'; available methods: {METHOD_NAMES}."),
        (("+method=lora", "+task=rtee"), f"error: unknown task 'rtee'; available tasks: {TASK_NAMES}."),
        (("-m", "+method=lora,nope", "+task=rte"), "error: unknown method 'nope'"),
    ],
)
def test_usage_errors_exit_2_with_one_sentence(arguments, message):
    result = peftbench(*arguments)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_data_folder_exits_2_before_any_work(tmp_path):
    missing = tmp_path / "missing"
    result = peftbench(
        "+method=bitfit",
        "+task=rte",
        f"hydra.run.dir={tmp_path / 'hydra'}",
        *TINY_RUN,
        env_extra={"PEFTBENCH_DATA_DIR": str(missing), "PEFTBENCH_RESULTS_DIR": str(tmp_path / "results")},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: Task 'rte' needs {missing / 'rte' / 'train.tsv'}; data_dir '{missing}' must hold the "
        "GLUE/SuperGLUE layout (rte/train.tsv), or set data_dir=null to load from the hub."
    ]
    assert not (tmp_path / "results").exists()  # no record: nothing ran


@pytest.mark.slow
def test_multirun_writes_a_record_per_job_in_one_wandb_group(toy_data_dir, tmp_path):
    env = {
        "PEFTBENCH_DATA_DIR": str(toy_data_dir),
        "PEFTBENCH_RESULTS_DIR": str(tmp_path / "results"),
        "WANDB_MODE": "offline",
        "HOME": str(tmp_path),
        "WANDB_API_KEY": "",
    }
    result = peftbench(
        "-m",
        "+method=lora,bitfit",
        "+task=rte",
        "trainer.max_steps=2",
        "tracker=wandb",
        f"tracker.dir={tmp_path}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *[o for o in TINY_RUN if not o.startswith("tracker")],
        env_extra=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "results").rglob("*.json")]
    assert sorted(r["run"]["method"] for r in records) == ["bitfit", "lora"]
    group = str(tmp_path / "sweep").replace("/", "_")
    assert {r["config"]["tracker"]["group"] for r in records} == {group}
    run_files = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(run_files) == 2 and all(group.encode() in f.read_bytes() for f in run_files)


@pytest.mark.parametrize(
    "module",
    [
        "peftbench",
        "peftbench.count",
        "peftbench.report",
        "peftbench.choose",
        "peftbench.predict",
        "peftbench.published",
    ],
)
def test_every_entry_point_answers_help_with_its_usage(module):
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stderr
    assert f"python -m {module} " in result.stdout and "powered by Hydra" not in result.stdout
    assert "error" not in result.stderr.lower()


def write_user_task(root) -> tuple:
    """A user's own CSV task in their own config folder, outside the package."""
    (root / "conf" / "task").mkdir(parents=True)
    (root / "conf" / "task" / "reviews.yaml").write_text(
        "defaults: [/templates/task@_here_, _self_]\n"
        "name: reviews\n"
        "hub: {path: none, name: null}\n"
        "local: {dir: reviews, format: csv, splits: {train: train.csv, validation: dev.csv}}\n"
        'segments: ["{text}"]\n'
        "labels: [neg, pos]\n"
    )
    (root / "data" / "reviews").mkdir(parents=True)
    for split, n in (("train", 48), ("dev", 16)):
        rows = ['"good, fine film",pos' if i % 2 == 0 else "bad film,neg" for i in range(n)]
        (root / "data" / "reviews" / f"{split}.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    return root / "conf", root / "data"


@pytest.mark.slow
def test_a_users_own_task_runs_from_their_config_folder(tmp_path):
    conf, data = write_user_task(tmp_path)
    command = [sys.executable, "-m", "peftbench", "--config-dir", str(conf), "+method=bitfit", "+task=reviews"]
    command += [f"data_dir={data}", f"results_dir={tmp_path / 'results'}", "checkpoint_dir=null", *TINY_RUN]
    result = subprocess.run([*command, "trainer.epochs=1"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (path,) = (tmp_path / "results" / "reviews").rglob("*.json")
    record = json.loads(path.read_text())
    assert (
        record["status"] == "ok" and record["data"]["train_examples"] == 48 and record["data"]["eval_examples"] == 16
    )


def test_the_name_checks_read_the_users_config_folders(tmp_path, capsys):
    conf, data = write_user_task(tmp_path)
    chosen = preflight(["--config-dir", str(conf), "+method=bitfit", "+task=reviews", f"data_dir={data}"])
    assert chosen.task.name == "reviews"
    searched = preflight([f"hydra.searchpath=[file://{conf}]", "+method=bitfit", "+task=reviews", f"data_dir={data}"])
    assert searched.task.local.format == "csv"
    with pytest.raises(SystemExit):
        preflight(["--config-dir", str(conf), "+method=bitfit", "+task=reviewz"])
    assert "unknown task 'reviewz'; available tasks: cb, cola, e2e_nlg, mrpc, reviews, rte" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        preflight(["+method=bitfit", "+task=reviews"])  # without the folder it is not a task
    assert "unknown task 'reviews'" in capsys.readouterr().err
