"""Where a task's local files are: data_dir/<task.local.dir>/<task.local.splits[split]>. Imports no torch, so
the checks before a run answer a missing file in a fraction of a second."""

from pathlib import Path

from peftbench.errors import MissingDataError

SPLITS = ("train", "validation")  # the splits a task reads: it trains on the first, evaluates on the second


def local_file(task, data_dir: str, split: str) -> Path:
    """The task's file of `split` in the data folder; MissingDataError, in one sentence, where it is not there."""
    local = task.local
    path = Path(data_dir) / local.dir / local.splits[split]
    if not path.is_file():
        raise MissingDataError(
            f"Task '{task.name}' needs {path}; data_dir '{data_dir}' must hold the GLUE/SuperGLUE "
            f"layout ({local.dir}/{local.splits[split]}), or set data_dir=null to load from the hub."
        )
    return path
