"""Run records: one self-describing JSON file per run, written atomically. The source of truth."""

import hashlib
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # reading records (the report) needs no torch; writing one imports it
    import torch

SCHEMA_VERSION = 1
READABLE_SCHEMA_VERSIONS = (1,)  # versions this code reads; an older one would be migrated here
# What defines an experiment; where results go and how they are tracked does not change its hash.
HASHED_KEYS = ("model", "method", "task", "trainer", "budget", "seed")
PACKAGES = ("torch", "transformers", "peft", "datasets", "hydra-core", "wandb", "scikit-learn", "scipy")


# Trainer keys that say how a run is carried out (saved and resumed), not what it computes.
UNHASHED_TRAINER_KEYS = ("resume", "save_state_every_steps")


def config_hash(config: dict, data_identity: dict | None = None) -> str:
    """The experiment's identity: its hashed config keys and what its data is (the files' hashes, not
    where they lie), so a run on other data never counts as done."""
    experiment = {key: config.get(key) for key in HASHED_KEYS} | {"data": data_identity}
    if isinstance(experiment["trainer"], dict):
        experiment["trainer"] = {k: v for k, v in experiment["trainer"].items() if k not in UNHASHED_TRAINER_KEYS}
    return hashlib.sha256(json.dumps(experiment, sort_keys=True, default=str).encode()).hexdigest()[:12]


# Where runs write their outputs in the repository: not code, so a grid's records written beside a run (the
# published ones are not git-ignored) leave that run's code as committed.
OUTPUTS = "results"


def git_commit(root: Path | None = None) -> dict:
    """The commit the code ran at, and whether anything but run outputs differed from it (edits, new files)."""
    root = root or Path(__file__).resolve().parent.parent

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        changed = git("status", "--porcelain", "--", ".", f":(exclude){OUTPUTS}")
        return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(changed)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def device_description(device: "torch.device | None") -> str:
    import torch

    if device is None:
        return "unresolved"
    if device.type == "cuda":
        try:
            return torch.cuda.get_device_name(device)
        except (RuntimeError, AssertionError) as error:  # a CUDA device this machine lacks
            return f"unavailable ({error})"
    return f"{platform.processor() or platform.machine()} cpu, {torch.get_num_threads()} threads"


def provenance(device: "torch.device | None") -> dict:
    import torch

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
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_folder(results_dir: str, config: dict) -> Path:
    """results/<task>/<model>/<method>/"""
    return Path(results_dir) / config["task"]["name"] / config["model"]["name"] / config["method"]["name"]


def record_path(results_dir: str, config: dict, run_id: str) -> Path:
    return record_folder(results_dir, config) / f"{run_id}.json"


def this_process() -> dict:
    """Who is running a record, so that a reader can tell a live run from a killed one."""
    return {"hostname": socket.gethostname(), "pid": os.getpid()}


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def effective_status(record: dict) -> str:
    """A `running` record whose process on this host is gone was killed (SIGKILL, power): `interrupted`."""
    status = record.get("status")
    owner = record.get("run", {}).get("process") or {}
    on_this_host = owner.get("hostname") == socket.gethostname()
    if status == "running" and on_this_host and not process_alive(owner.get("pid", -1)):
        return "interrupted"
    return status


def load_record(path: Path) -> dict | None:
    """A record as written, its status made effective; None (with a warning naming the file) for one
    that cannot be read or is of a schema version this code does not know."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        print(f"warning: skipping unreadable record {path}: {error}", file=sys.stderr)
        return None
    version = record.get("schema_version") if isinstance(record, dict) else None
    if version not in READABLE_SCHEMA_VERSIONS:
        print(
            f"warning: skipping {path}: schema_version {version!r} is not one this peftbench reads "
            f"({', '.join(map(str, READABLE_SCHEMA_VERSIONS))}).",
            file=sys.stderr,
        )
        return None
    record["status"] = effective_status(record)
    return record


def find_records(results_dir: str, config: dict, config_hash: str) -> list[tuple[Path, dict]]:
    """Every readable record of the same configuration (same hash), with its path."""
    found = []
    for path in sorted(record_folder(results_dir, config).glob(f"*-{config_hash}-*.json")):
        record = load_record(path)
        if record is not None and record["run"]["config_hash"] == config_hash:
            found.append((path, record))
    return found


def find_ok_record(results_dir: str, config: dict, config_hash: str) -> dict | None:
    """An earlier `ok` record of the same configuration (same hash), with its path, or None."""
    for path, record in find_records(results_dir, config, config_hash):
        if record["status"] == "ok":
            return {**record, "path": str(path)}
    return None


def mark_interrupted(results_dir: str, config: dict, config_hash: str) -> None:
    """Rewrite the killed runs of this configuration as `interrupted`, so no reader waits for them."""
    for path, record in find_records(results_dir, config, config_hash):
        if record["status"] == "interrupted":
            write_record(record, path)


def check_writable(folder: str | Path, what: str) -> None:
    """Fails before any work if a file cannot be created in `folder` (made if missing)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as error:
        raise NotWritableError(
            f"The {what} '{folder}' cannot be written ({error.strerror or error}); choose a writable folder."
        ) from error


class NotWritableError(OSError):
    """A results or checkpoint folder that cannot be written: found before the run starts."""


def finite_or_null(value, path: str = "", found: dict | None = None):
    """`value` with every NaN or infinity replaced by None; `found` collects their paths and what they were
    (a record never holds a sentinel, and strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        found[path] = str(value)
        return None
    if isinstance(value, dict):
        return {key: finite_or_null(item, f"{path}.{key}" if path else str(key), found) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item, f"{path}[{index}]", found) for index, item in enumerate(value)]
    return value


def record_json(record: dict) -> str:
    """The record as indented JSON with every list of plain values on one line: an SST-2 record's 872
    predictions and labels take 3.5 kB instead of 40 kB, which keeps a published set of some 700 runs
    small enough to commit."""
    plain = json.loads(json.dumps(record, allow_nan=False))  # keys as JSON writes them, tuples as lists

    def lines(value, depth: int) -> str:
        inner, outer = "  " * (depth + 1), "  " * depth
        if isinstance(value, dict) and value:
            items = (f"{inner}{json.dumps(key)}: {lines(item, depth + 1)}" for key, item in value.items())
            return "{\n" + ",\n".join(items) + f"\n{outer}}}"
        if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
            return "[\n" + ",\n".join(inner + lines(item, depth + 1) for item in value) + f"\n{outer}]"
        return json.dumps(value, separators=(",", ":") if isinstance(value, list) else None)

    return lines(plain, 0)


def write_record(record: dict, path: Path) -> Path:
    """Write to a temporary file in the same folder, then rename: a reader never sees half a record.
    Non-finite numbers are written as null, listed under `non_finite` with what they were."""
    found = {}
    clean = finite_or_null(record, found=found)
    if found:
        clean["non_finite"] = {**record.get("non_finite", {}), **found}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(record_json(clean))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def record_paths(results_dir: str | Path) -> list[Path]:
    """Every record file under `results_dir`, not those being written (.tmp-*)."""
    return sorted(p for p in Path(results_dir).rglob("*.json") if not p.name.startswith(".tmp-"))


def read_records(results_dir: str) -> list[dict]:
    """Every readable record under `results_dir` (unreadable ones are skipped with a warning)."""
    return [record for record in map(load_record, record_paths(results_dir)) if record is not None]
