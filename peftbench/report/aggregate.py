"""From records to table cells: mean, standard deviation and count over seeds."""

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    mean: float
    std: float | None  # None with a single run
    n: int


def lookup(config: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(config, dict) or part not in config:
            return None
        config = config[part]
    return config


def matching(records: list[dict], method: str, task: str, model: str, where: dict) -> list[dict]:
    """ok records of one method on one task and model whose config has the `where` values."""
    return [r for r in records if r["status"] == "ok" and r["run"]["method"] == method and r["run"]["task"] == task
            and r["run"]["model"] == model and all(lookup(r["config"], k) == v for k, v in where.items())]


def cell(values: list[float]) -> Cell | None:
    if not values:
        return None  # missing stays missing, never filled
    return Cell(statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None, len(values))
