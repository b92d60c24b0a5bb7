"""The run record: schema, config hash, atomic writes, failed runs."""

import json
import subprocess
from pathlib import Path

import pytest

from peftbench import records
from peftbench.recipe import run

from conftest import compose_config


def test_record_schema_and_path(tiny_run_config, tmp_path):
    output = run(tiny_run_config("lora", "trainer.epochs=1"))
    record = output.record
    path = Path(record["path"])
    assert path.parts[-4:-1] == ("rte", "tiny_bert", "lora")
    on_disk = json.loads(path.read_text())
    assert on_disk == {k: v for k, v in record.items() if k != "path"}

    assert on_disk["status"] == "ok" and "error" not in on_disk
    assert set(on_disk["run"]) >= {"id", "task", "model", "method", "seed", "config_hash", "started_at", "finished_at"}
    assert on_disk["config"]["method"]["r"] == 8 and on_disk["config"]["trainer"]["lr"] == 1e-2
    metrics = on_disk["metrics"]
    assert metrics["main_metric"] == "accuracy"
    assert set(metrics["final"]) == set(metrics["best"]) == {"accuracy"}
    assert 0.0 <= metrics["final"]["accuracy"] <= 1.0 and metrics["best_epoch"] == 1
    params = on_disk["params"]
    assert (
        0 < params["trainable"] < params["total"]
        and params["trainable_share"] == params["trainable"] / params["total"]
    )
    assert params["added"] + params["unfrozen"] + params["head"] == params["trainable"]
    assert params["stored_after_training"] == params["trainable"]
    assert on_disk["memory"]["kind"] == "cpu_rss" and on_disk["memory"]["peak_bytes"] > 0
    speed = on_disk["throughput"]
    assert speed["measured_steps"] == 8 - 2 and speed["median_step_seconds"] > 0
    assert speed["samples_per_second"] > 0 and speed["tokens_per_second"] > speed["samples_per_second"]
    assert on_disk["checkpoint"]["bytes"] > 0
    predictions = on_disk["predictions"]  # the final evaluation per example, for paired tests in reports
    assert len(predictions["predictions"]) == len(predictions["labels"]) == on_disk["data"]["eval_examples"] == 32
    correct = sum(p == y for p, y in zip(predictions["predictions"], predictions["labels"]))
    assert correct / 32 == metrics["final"]["accuracy"]
    timing = on_disk["time"]
    assert timing["wall_seconds"] >= timing["train_seconds"] > 0 and timing["train_steps"] == 8
    assert len(metrics["loss_curve"]) == 8 and metrics["loss_curve"][0] == metrics["first_loss"]  # 8 steps: 8 points
    prov = on_disk["provenance"]
    assert prov["packages"]["torch"].startswith("2.13") and prov["packages"]["peft"]
    assert set(prov["git"]) == {"commit", "dirty"} and prov["device"] == "cpu"
    assert list(path.parent.glob(".tmp-*")) == []


def test_git_dirty_means_code_changed_not_that_runs_wrote_records(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True)

    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", "code.py")
    git("commit", "-qm", "code")
    assert records.git_commit(tmp_path)["dirty"] is False
    (tmp_path / "results" / "published").mkdir(parents=True)
    (tmp_path / "results" / "published" / "run.json").write_text("{}")  # a sibling run's record, untracked
    assert records.git_commit(tmp_path)["dirty"] is False
    (tmp_path / "new.py").write_text("y = 2\n")  # code not committed
    assert records.git_commit(tmp_path)["dirty"] is True
    (tmp_path / "new.py").unlink()
    (tmp_path / "code.py").write_text("x = 2\n")  # committed code edited
    assert records.git_commit(tmp_path)["dirty"] is True
    assert len(records.git_commit(tmp_path)["commit"]) == 40


def test_config_hash_tracks_the_experiment_not_where_it_is_written():
    base = ["+method=lora", "+task=rte"]
    hash_of = lambda *o: records.config_hash(records_config(base + list(o)))  # noqa: E731
    assert hash_of() == hash_of("results_dir=elsewhere", "tracker=none")
    assert hash_of() != hash_of("seed=1")
    assert hash_of() != hash_of("method.r=4")


def records_config(overrides):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(compose_config(overrides), resolve=True)


def test_max_steps_and_gradient_accumulation(tiny_run_config):
    record = run(tiny_run_config("bitfit", "trainer.max_steps=5", "trainer.grad_accum_steps=2")).record
    assert record["time"]["train_steps"] == 5
    # 64 examples in batches of 8, two batches a step: 4 steps an epoch, so epoch 2 stops after one step
    assert [entry["step"] for entry in record["metrics"]["history"]] == [4, 5]


def test_a_failed_run_writes_a_failed_record_and_raises(tiny_run_config, tmp_path):
    cfg = tiny_run_config("lora", f"data_dir={tmp_path / 'nowhere'}")
    with pytest.raises(FileNotFoundError):
        run(cfg)
    written = [json.loads(p.read_text()) for p in Path(cfg.results_dir).rglob("*.json")]
    assert len(written) == 1
    assert written[0]["status"] == "failed"
    assert written[0]["error"]["type"] == "MissingDataError" and "rte/train.tsv" in written[0]["error"]["message"]
    assert "metrics" not in written[0]


def test_write_record_is_atomic_on_failure(tmp_path):
    path = tmp_path / "a" / "record.json"
    with pytest.raises(TypeError):
        records.write_record({"value": object()}, path)  # not JSON: nothing is written
    assert not path.exists() and list(path.parent.iterdir()) == []


def test_non_finite_values_are_written_as_null_with_what_they_were(tmp_path):
    path = records.write_record(
        {"metrics": {"final": {"pearson": float("nan"), "loss": float("inf")}, "n": 3}}, tmp_path / "record.json"
    )
    on_disk = json.loads(path.read_text())
    assert on_disk["metrics"] == {"final": {"pearson": None, "loss": None}, "n": 3}
    assert on_disk["non_finite"] == {"metrics.final.pearson": "nan", "metrics.final.loss": "inf"}


def test_lists_of_plain_values_are_written_on_one_line_and_read_back_unchanged(tmp_path):
    record = {
        "predictions": {"predictions": [1, 0] * 436, "labels": [0, 1] * 436},
        "metrics": {"history": [{"epoch": 1, "loss_curve": [0.7, 0.5]}], "empty": [], "none": {}},
        "pairs": [[1, 2], [3]],
        "sizes": (4, 5),
        3: "integer key",
    }
    path = records.write_record(record, tmp_path / "record.json")
    text = path.read_text()
    assert '    "predictions": [1,0,1,0,' in text.splitlines()[2]
    assert '"loss_curve": [0.7,0.5]' in text
    assert len(text) < 4000  # 872 predictions and labels, two characters each, plus the rest
    assert json.loads(text) == json.loads(json.dumps(record))
