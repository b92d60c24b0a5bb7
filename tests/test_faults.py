"""Bad input and faults: every failure is one clear sentence, early, and on the record; nothing is lost.

The bad-input table runs the CLI's own check of a command line in this process (the same function
`python -m peftbench` calls first); a few cases run as a real subprocess to hold the exit code."""

import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_cli import peftbench as peftbench_cli

from peftbench import cli, records
from peftbench.recipe import run

from conftest import REPO_ROOT, TINY_RUN, write_toy_rte

BASE = ["+method=lora", "+task=rte", "tracker=none", "model=tiny_bert"]

BAD_COMMAND_LINES = [
    # (overrides, what the one sentence must say)
    (["trainer.epochs=abc"], "trainer.epochs='abc' is not valid: it must be a whole number of at least 1."),
    (["trainer.epochs=0"], "trainer.epochs=0 is not valid"),
    (["trainer.batch_size=0"], "trainer.batch_size=0 is not valid"),
    (["method.r=0"], "method.r=0 is not valid: it must be a whole number of at least 1."),
    (["method.r=-1"], "method.r=-1 is not valid"),
    (
        ["task.max_train_samples=-5"],
        "task.max_train_samples=-5 is not valid: it must be a whole number of at least 1 or null.",
    ),
    (["trainer.lr=0"], "trainer.lr=0 is not valid: it must be a number above 0."),
    (
        ["trainer.warmup_ratio=1.5"],
        "trainer.warmup_ratio=1.5 is not valid: it must be a number at least 0 and below 1.",
    ),
    (["trainer.nan_policy=maybe"], "trainer.nan_policy='maybe' is not valid; valid: stop, skip."),
    (["trainer.precision=fp8"], "trainer.precision='fp8' is not valid; valid: fp32, bf16, fp16."),
    (["trainer.group_by_length=maybe"], "trainer.group_by_length='maybe' is not valid; valid: True, False."),
    (
        ["trainer.gradient_checkpointing=maybe"],
        "trainer.gradient_checkpointing='maybe' is not valid; valid: True, False.",
    ),
    (["model.pretrained=maybe"], "model.pretrained='maybe' is not valid; valid: True, False."),
    (
        ["model.attn_implementation=fast"],
        "model.attn_implementation='fast' is not valid; valid: sdpa, eager, flash_attention_2.",
    ),
    (
        ["model=roberta_base"],
        "Model 'roberta_base' (FacebookAI/roberta-base) could not be fetched: the hub cannot be reached and there "
        "is no cached copy; use model=minilm_l6 or model=smollm2_135m, or model.pretrained=false for random weights",
    ),
    (
        ["task.heldout_fraction=2"],
        "task.heldout_fraction=2 is not valid: it must be a number above 0 and below 1 or null.",
    ),
    (
        ["method.target_modules=[q,zz]"],
        "method.target_modules=['q', 'zz'] names unknown role(s) zz; model 'tiny_bert' defines: q, k, v,",
    ),
    (["method.target_modules=q"], "method.target_modules='q' is not valid: it must be a list of roles, e.g. [q, v]"),
    (["+method=ia3", "method.feedforward_modules=[ffn]"], "method.feedforward_modules=['ffn'] names unknown role(s)"),
    (["+method=unipelt", "method.lora_roles=[query]"], "method.lora_roles=['query'] names unknown role(s) query"),
    (["data_dir=/nonexistent"], "Task 'rte' needs /nonexistent/rte/train.tsv; data_dir '/nonexistent' must hold"),
    (["seed=-1"], "seed=-1 is not valid"),
    (["num_threads=0"], "num_threads=0 is not valid"),
    (["model=nope"], "unknown model 'nope'; available models: "),
    (["tracker=nope"], "unknown tracker 'nope'; available trackers: none, wandb."),
    (["trainer.epoch=3"], "unknown key 'trainer.epoch' (did you mean 'trainer.epochs'?); valid keys of trainer: "),
    (["device=nonsense"], "device='nonsense' is not valid; valid: auto, cpu, cuda, mps"),
    (
        ["budget.params=1000", "budget.share=0.1"],
        "sets both budget.params=1000 and budget.share=0.1; set one of them.",
    ),
    (
        ["+method=prefix_tuning", "model=deberta_v3_base"],
        "Method 'prefix_tuning' cannot serve model type 'deberta-v2'",
    ),
    (
        ["method.bogus=1"],
        "unknown key 'method.bogus'; valid keys of method: alpha, corda_batches, corda_mode, dropout",
    ),
    (["+method.bogus=1"], "Unknown option(s) bogus for method 'lora'; valid options: "),
    (["tracker=wandb", "tracker.mode=online"], "tracker.mode=online needs a W&B API key"),
    (
        ["tracker=wandb", "tracker.mode=sometimes"],
        "tracker.mode='sometimes' is not valid; valid: auto, online, offline, disabled.",
    ),
]
if importlib.util.find_spec("flash_attn") is None:
    BAD_COMMAND_LINES.append(
        (["model.attn_implementation=flash_attention_2"], "flash_attention_2 needs the flash-attn package")
    )
if not torch.cuda.is_available():
    BAD_COMMAND_LINES.append((["device=cuda"], "device='cuda' is not available: this machine has no CUDA device"))


def command_line(overrides: list[str]) -> list[str]:
    """BASE with the case's overrides; a case's own +method replaces the base one."""
    base = [b for b in BASE if not any(o.split("=")[0] == b.split("=")[0] for o in overrides)]
    if any(o.startswith("model=") for o in overrides):
        base = [b for b in base if not b.startswith("model=")]
    return base + overrides


@pytest.mark.parametrize("overrides, sentence", BAD_COMMAND_LINES, ids=[" ".join(c[0]) for c in BAD_COMMAND_LINES])
def test_a_bad_command_line_is_one_sentence_and_exit_2_before_any_work(
    overrides, sentence, capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("PEFTBENCH_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: no W&B key
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli.preflight(command_line(overrides))
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: ") and sentence in message, message
    assert len(message.splitlines()) == 1 and message.endswith(".")
    assert not (tmp_path / "results").exists()  # nothing ran, nothing was written


def test_a_task_option_without_a_task_names_the_missing_group(capsys):
    with pytest.raises(SystemExit):
        cli.preflight(["+method=lora", "task.max_train_samples=5"])
    assert (
        "task.max_train_samples needs a task: add +task=<name>; available tasks: cb, cola" in capsys.readouterr().err
    )


def test_a_good_command_line_passes_the_checks_and_a_grid_is_checked_on_its_first_job(capsys):
    cfg = cli.preflight(["-m", "+method=lora,bitfit", "+task=rte", "seed=0,1", "tracker=none"])
    assert (cfg.method.name, cfg.seed) == ("lora", 0)
    with pytest.raises(SystemExit):
        cli.preflight(["-m", "+method=lora,bitfit", "+task=rte", "trainer.lr=0,1e-3"])
    assert "trainer.lr=0 is not valid" in capsys.readouterr().err


@pytest.mark.slow
def test_the_cli_exits_2_for_a_bad_value_and_for_bad_data(tmp_path):
    bad_value = peftbench_cli(*BASE, "trainer.epochs=0")
    assert bad_value.returncode == 2 and bad_value.stderr.strip().splitlines() == [
        "error: trainer.epochs=0 is not valid: it must be a whole number of at least 1."
    ]
    data_dir = write_toy_rte(tmp_path / "data")
    (data_dir / "rte" / "train.tsv").write_text("index\tsentence1\tlabel\n0\ta cat\tentailment\n")
    bad_data = peftbench_cli(
        *BASE,
        *TINY_RUN,
        f"data_dir={data_dir}",
        f"results_dir={tmp_path / 'results'}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    )
    assert bad_data.returncode == 2
    assert bad_data.stderr.strip().splitlines()[-1] == (
        f"error: {data_dir / 'rte' / 'train.tsv'} has no column 'sentence2', which task 'rte' reads; "
        "its columns: index, sentence1, label."
    )
    (record,) = records.read_records(str(tmp_path / "results"))
    assert record["status"] == "failed" and record["error"]["type"] == "DataError"


BAD_TRAIN_FILES = [
    ("header only", "index\tsentence1\tsentence2\tlabel\n", "holds no examples (an empty file, or a header alone)"),
    ("empty", "", "holds no examples"),
    (
        "not UTF-8",
        b"index\tsentence1\tsentence2\tlabel\n0\tcaf\xe9\tb\tentailment\n",
        "is not UTF-8 text (byte 0xe9 at offset",
    ),
    (
        "missing column",
        "index\tsentence1\tlabel\n0\ta\tentailment\n",
        "has no column 'sentence2', which task 'rte' reads",
    ),
    ("bad label", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n", "Label 'maybe' of task 'rte' is not one of"),
]


@pytest.mark.parametrize("content, message", [c[1:] for c in BAD_TRAIN_FILES], ids=[c[0] for c in BAD_TRAIN_FILES])
def test_bad_data_fails_in_one_sentence_naming_the_file_before_the_model_is_built(
    content, message, tiny_run_config, tmp_path, monkeypatch
):
    data_dir = write_toy_rte(tmp_path / "data")
    train = data_dir / "rte" / "train.tsv"
    train.write_bytes(content if isinstance(content, bytes) else content.encode())
    monkeypatch.setattr("peftbench.recipe.build_base", lambda cfg: pytest.fail("the model was built"))
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        run(tiny_run_config("lora", f"data_dir={data_dir}"))
    assert str(train) in str(error.value) or "Label" in str(error.value)
    (record,) = records.read_records(tiny_run_config("lora").results_dir)
    assert record["status"] == "failed"


def test_a_failure_after_the_device_is_chosen_still_writes_its_record(tiny_run_config, monkeypatch):
    """A CUDA device this machine lacks (as `device=cuda` was before the up-front check): the failure and
    the provenance of a device that cannot be described are both on the record."""
    monkeypatch.setattr("peftbench.recipe.validate", lambda cfg: torch.device("cuda:7"))
    cfg = tiny_run_config("lora")
    with pytest.raises((RuntimeError, AssertionError, AttributeError)):  # CPU-only torch has no CUDA to reach
        run(cfg)
    (record,) = records.read_records(cfg.results_dir)
    assert record["status"] == "failed" and record["provenance"]["device"] == "cuda:7"
    assert record["provenance"]["device_name"].startswith("unavailable")


def nan_after(method_name: str, calls: int, monkeypatch):
    """The method's extra loss turns NaN at the `calls`-th batch (a loss that diverged)."""
    from peftbench.methods import get_method

    count = {"n": 0}

    def extra_loss(model):
        count["n"] += 1
        return torch.tensor(float("nan")) if count["n"] == calls else None

    method = dataclasses.replace(get_method(method_name), extra_loss=extra_loss)
    monkeypatch.setattr("peftbench.recipe.get_method", lambda name: method)


def test_a_non_finite_loss_stops_the_run_at_that_step_with_a_failed_record(tiny_run_config, monkeypatch, tmp_path):
    nan_after("lora", 3, monkeypatch)
    cfg = tiny_run_config("lora")
    with pytest.raises(RuntimeError, match=r"The loss became nan at step 3 \(epoch 1\); lower trainer.lr"):
        run(cfg)
    (record,) = records.read_records(cfg.results_dir)
    assert record["status"] == "failed" and (record["error"]["step"], record["error"]["epoch"]) == (3, 1)
    assert not list((tmp_path / "checkpoints").rglob("*"))  # it stopped before anything was saved


def test_nan_policy_skip_drops_the_batch_and_counts_it(tiny_run_config, monkeypatch):
    nan_after("lora", 3, monkeypatch)
    record = run(tiny_run_config("lora", "trainer.nan_policy=skip", "trainer.epochs=1")).record
    assert record["status"] == "ok" and record["time"]["skipped_steps"] == 1
    assert record["time"]["train_steps"] == 8 - 1  # 64 examples in batches of 8, one dropped


def test_a_folder_that_cannot_be_written_fails_before_any_work(tiny_run_config, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setattr("peftbench.recipe.build_base", lambda cfg: pytest.fail("the model was built"))
    with pytest.raises(
        records.NotWritableError, match=f"The results folder '{blocker}/rte/tiny_bert/lora' cannot be written"
    ):
        run(tiny_run_config("lora", f"results_dir={blocker}"))
    with pytest.raises(records.NotWritableError, match=f"The checkpoint folder '{blocker}/ckpt' cannot be written"):
        run(tiny_run_config("lora", f"checkpoint_dir={blocker}/ckpt"))


def test_a_full_disk_at_the_last_write_leaves_the_run_visible_as_interrupted(tiny_run_config, monkeypatch):
    cfg = tiny_run_config("lora", "trainer.max_steps=2")
    write = records.write_record

    def disk_full_when_done(record, path):
        if record["status"] != "running":
            raise OSError(28, "No space left on device")
        return write(record, path)

    monkeypatch.setattr(records, "write_record", disk_full_when_done)
    with pytest.raises(OSError, match="No space left"):
        run(cfg)
    monkeypatch.setattr(records, "write_record", write)
    (on_disk,) = records.read_records(cfg.results_dir)
    assert on_disk["status"] == "running"  # its own process is still alive: this is the test process


# --- records that cannot lie -------------------------------------------------------------------


def test_the_data_is_part_of_the_experiment(tiny_run_config, tmp_path):
    first = run(tiny_run_config("bitfit", "trainer.max_steps=1")).record
    assert first["data"]["fingerprint"]["files"]["train"]["file"] == "rte/train.tsv"
    copy = Path(shutil.copytree(tiny_run_config("bitfit").data_dir, tmp_path / "copy"))
    assert run(tiny_run_config("bitfit", "trainer.max_steps=1", f"data_dir={copy}")).skipped  # the same files
    (copy / "rte" / "dev.tsv").write_text((copy / "rte" / "dev.tsv").read_text().replace("cat", "cow"))
    changed = run(tiny_run_config("bitfit", "trainer.max_steps=1", f"data_dir={copy}"))
    assert not changed.skipped and changed.record["run"]["config_hash"] != first["run"]["config_hash"]


def test_unreadable_and_unknown_version_records_are_skipped_and_named(tiny_run_config, capsys):
    cfg = tiny_run_config("bitfit", "trainer.max_steps=1")
    first = run(cfg).record
    folder = Path(first["path"]).parent
    truncated = folder / f"20990101-000000-{first['run']['config_hash']}-seed0-aaaaaa.json"
    truncated.write_text('{"schema_version": 1, "status": "ok", "run": {')
    future = folder / "future.json"
    future.write_text(json.dumps({**first, "schema_version": 99}))
    capsys.readouterr()
    assert run(cfg).skipped  # the truncated one is skipped, the earlier ok one found
    assert [r["run"]["id"] for r in records.read_records(cfg.results_dir)] == [first["run"]["id"]]
    warnings = capsys.readouterr().err
    assert f"warning: skipping unreadable record {truncated}" in warnings
    assert f"warning: skipping {future}: schema_version 99 is not one this peftbench reads (1)." in warnings


def test_runs_that_differ_in_more_than_the_seed_are_not_pooled(tiny_run_config):
    from peftbench.report.specs import SPECS
    from peftbench.report.tables import build

    for overrides in ([], ["seed=1"], ["trainer.lr=1e-3"]):
        run(tiny_run_config("bitfit", "trainer.max_steps=2", *overrides))
    table = build(SPECS["methods_measured"], records.read_records(tiny_run_config("bitfit").results_dir), "tiny_bert")
    split = [row for row in table.rows if row.method == "bitfit"]
    assert [row.label for row in split] == [
        "bitfit (selective) [trainer.lr=0.001]",
        "bitfit (selective) [trainer.lr=0.01]",
    ]
    cells = [table.entries[(row.label, "Checkpoint MB")].ours for row in split]
    assert [c.n for c in cells] == [1, 2]  # the two seeds of one setting, and the other setting alone
    from peftbench.report.plots import COSTS, points, runs_of

    plotted = points(
        runs_of(records.read_records(tiny_run_config("bitfit").results_dir), "rte", "tiny_bert"),
        "accuracy",
        COSTS["trainable_share"],
    )
    assert sorted((p.setting, p.metric.n) for p in plotted) == [("trainer.lr=0.001", 1), ("trainer.lr=0.01", 2)]


def test_the_report_says_what_it_found(tmp_path):
    missing = tmp_path / "nonexistent"
    report = subprocess.run(
        [sys.executable, "-m", "peftbench.report", f"results_dir={missing}", f"out_dir={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 2 and f"error: results_dir '{missing}' is not a folder" in report.stderr
    assert not missing.exists() and not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()
    report = subprocess.run(
        [sys.executable, "-m", "peftbench.report", f"results_dir={tmp_path / 'empty'}", f"out_dir={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 2 and f"found 0 record(s) under {tmp_path / 'empty'}" in report.stderr
    assert "no ok records" in report.stderr and not (tmp_path / "out").exists()


# --- killed, stopped, resumed --------------------------------------------------------------------

CHILD = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from conftest import compose_config
import peftbench.recipe as recipe
from peftbench.methods import get_method
import dataclasses

method = get_method("lora")
def on_step(model, step, total_steps):
    if step == {at_step}:
        os.kill(os.getpid(), signal.{signal_name})
recipe.get_method = lambda name: dataclasses.replace(method, on_step=on_step)
recipe.run(compose_config({overrides!r}))
"""


def run_child(overrides: list[str], at_step: int, signal_name: str) -> subprocess.CompletedProcess:
    script = CHILD.format(
        tests=str(REPO_ROOT / "tests"), at_step=at_step, signal_name=signal_name, overrides=overrides
    )
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=300)


def folders_of(cfg) -> list[str]:
    """The tiny run's data, results and checkpoint folders, as overrides for a child process."""
    return [f"data_dir={cfg.data_dir}", f"results_dir={cfg.results_dir}", f"checkpoint_dir={cfg.checkpoint_dir}"]


@pytest.mark.slow
def test_a_killed_run_is_seen_as_interrupted_and_a_resumed_run_reaches_the_same_losses(tiny_run_config):
    cfg = tiny_run_config("lora")
    overrides = [
        "+method=lora",
        "+task=rte",
        *TINY_RUN,
        "trainer.epochs=2",
        "trainer.save_state_every_steps=2",
        *folders_of(cfg),
    ]
    child = run_child(overrides, at_step=11, signal_name="SIGKILL")
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    (killed,) = records.read_records(cfg.results_dir)
    assert killed["status"] == "interrupted"  # its process is gone; on disk it still says running
    assert records.find_ok_record(cfg.results_dir, killed["config"], killed["run"]["config_hash"]) is None

    resumed = run(
        tiny_run_config("lora", "trainer.epochs=2", "trainer.save_state_every_steps=2", "trainer.resume=true")
    )
    assert resumed.record["time"]["resumed_from_step"] == 10  # the last state saved before step 11
    assert resumed.record["run"]["config_hash"] == killed["run"]["config_hash"]  # resume is not a new experiment
    on_disk = {r["run"]["id"]: r["status"] for r in records.read_records(cfg.results_dir)}
    assert on_disk == {killed["run"]["id"]: "interrupted", resumed.record["run"]["id"]: "ok"}
    assert json.loads(Path(killed_path(cfg, killed)).read_text())["status"] == "interrupted"  # rewritten

    uninterrupted = run(tiny_run_config("lora", "trainer.epochs=2", f"results_dir={cfg.results_dir}-plain"))
    assert resumed.losses == uninterrupted.losses and len(resumed.losses) == 16
    assert resumed.record["metrics"]["final"] == uninterrupted.record["metrics"]["final"]
    assert not list((Path(cfg.results_dir) / ".resume").glob("*.pt"))  # finished: the state is gone


def killed_path(cfg, record) -> Path:
    return records.record_path(cfg.results_dir, record["config"], record["run"]["id"])


@pytest.mark.slow
def test_sigterm_writes_an_interrupted_record_with_the_reason(tiny_run_config):
    cfg = tiny_run_config("lora")
    child = run_child(["+method=lora", "+task=rte", *TINY_RUN, *folders_of(cfg)], at_step=2, signal_name="SIGTERM")
    assert child.returncode != 0
    (record,) = records.read_records(cfg.results_dir)
    assert record["status"] == "interrupted" and record["error"]["type"] == "RunInterrupted"
    assert record["error"]["message"] == "The run was interrupted by SIGTERM."


@pytest.mark.slow
def test_runs_started_together_get_hydra_folders_of_their_own(toy_data_dir, tmp_path):
    arguments = [
        *BASE,
        *TINY_RUN,
        "trainer.max_steps=1",
        f"data_dir={toy_data_dir}",
        f"results_dir={tmp_path / 'results'}",
        "checkpoint_dir=null",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "peftbench", *arguments, f"seed={seed}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (0, 1)
    ]
    assert all(child.wait(timeout=300) == 0 for child in children)
    folders = sorted(p.parent.parent for p in (tmp_path / "outputs").rglob(".hydra/overrides.yaml"))
    assert len(folders) == 2
    seeds = sorted(
        next(line for line in (f / ".hydra" / "overrides.yaml").read_text().splitlines() if "seed=" in line)
        for f in folders
    )
    assert seeds == ["- seed=0", "- seed=1"]


# --- services ---------------------------------------------------------------------------------------


def test_a_wandb_server_out_of_reach_costs_one_warning_and_logs_offline(monkeypatch, capsys, tmp_path):
    from omegaconf import OmegaConf

    from peftbench.tracking import WandbTracker

    calls = []

    class FakeWandb:
        class Settings(dict):
            def __init__(self, **options):
                super().__init__(options)

        @staticmethod
        def init(mode, settings=None, **options):
            calls.append((mode, settings))
            if mode == "online":
                raise TimeoutError("Run initialization has timed out after 30.0 sec.")
            return "offline run"

    monkeypatch.setitem(sys.modules, "wandb", FakeWandb)
    tracker_cfg = OmegaConf.create(
        {
            "project": "p",
            "entity": None,
            "mode": "online",
            "dir": str(tmp_path),
            "group": None,
            "tags": [],
            "init_timeout_s": 30,
        }
    )
    tracker = WandbTracker(tracker_cfg, {}, name="run")
    assert tracker.run == "offline run" and [mode for mode, _ in calls] == ["online", "offline"]
    assert calls[0][1] == {"init_timeout": 30}  # a bounded wait
    (warning,) = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith("warning: W&B could not be reached (TimeoutError") and "wandb sync" in warning
