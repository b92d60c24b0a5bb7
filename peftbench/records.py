"""Run records: one self-describing JSON file per run, written atomically. The source of truth."""

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch

SCHEMA_VERSION = 1
# What defines an experiment; where results go and how they are tracked does not change its hash.
HASHED_KEYS = ("model", "method", "task", "trainer", "budget", "seed")
PACKAGES = ("torch", "transformers", "peft", "datasets", "hydra-core", "wandb", "scikit-learn", "scipy")


def config_hash(config: dict) -> str:
    experiment = {key: config.get(key) for key in HASHED_KEYS}
    return hashlib.sha256(json.dumps(experiment, sort_keys=True, default=str).encode()).hexdigest()[:12]


def git_commit() -> dict:
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} cpu, {torch.get_num_threads()} threads"


def provenance(device: torch.device) -> dict:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "packages": versions,
        "python": platform.python_version(),
        "git": git_commit(),
        "device": str(device),
        "device_name": device_description(device),
        "cuda": torch.version.cuda,
        "hostname": platform.node(),
        "platform": platform.platform(),
    }


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record_folder(results_dir: str, config: dict) -> Path:
    """results/<task>/<model>/<method>/"""
    return Path(results_dir) / config["task"]["name"] / config["model"]["name"] / config["method"]["name"]


def record_path(results_dir: str, config: dict, run_id: str) -> Path:
    return record_folder(results_dir, config) / f"{run_id}.json"


def find_ok_record(results_dir: str, config: dict, config_hash: str) -> dict | None:
    """An earlier `ok` record of the same configuration (same hash), with its path, or None."""
    for path in sorted(record_folder(results_dir, config).glob(f"*-{config_hash}-*.json")):
        record = json.loads(path.read_text())
        if record.get("status") == "ok" and record["run"]["config_hash"] == config_hash:
            return {**record, "path": str(path)}
    return None


def write_record(record: dict, path: Path) -> Path:
    """Write to a temporary file in the same folder, then rename: a reader never sees half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(record, file, indent=2, sort_keys=False, allow_nan=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_records(results_dir: str) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(Path(results_dir).rglob("*.json")) if not path.name.startswith(".tmp-")]
