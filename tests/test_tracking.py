"""Weights & Biases: offline without a key, into a directory that `wandb sync` can upload."""

from peftbench.recipe import run
from peftbench.tracking import wandb_mode


def test_auto_mode_is_offline_without_a_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode("auto") == "online"
    assert wandb_mode("disabled") == "disabled"


def test_wandb_offline_writes_a_run(tiny_run_config, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = tiny_run_config(
        "lora", "tracker=wandb", f"tracker.dir={tmp_path}", "tracker.group=test-group", "trainer.epochs=1"
    )
    record = run(cfg).record
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    (run_file,) = run_dir.glob("run-*.wandb")  # the file `wandb sync` uploads
    # wandb 0.31 ships no reader for it; its protobuf records hold keys and JSON values as plain bytes.
    content = run_file.read_bytes()
    for key in (b"train/loss", b"train/lr", b"eval/accuracy", b"final/accuracy", b"params/trainable", b"test-group"):
        assert key in content, key
    assert str(record["params"]["trainable"]).encode() in content
