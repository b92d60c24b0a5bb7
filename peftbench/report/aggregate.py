"""From records to table cells: mean, standard deviation and count over seeds."""

import json
import statistics
from dataclasses import dataclass

from peftbench.records import UNHASHED_TRAINER_KEYS

# Task options a user varies between runs of one task (the K-shot subset); the rest is the task itself.
TASK_SETTINGS = ("max_train_samples", "max_eval_samples", "heldout_fraction")
UNKNOWN_FAMILY = "family not recorded"  # older records, and W&B runs of a method no longer registered


@dataclass(frozen=True)
class Cell:
    mean: float
    std: float | None  # None with a single run
    n: int


# A run whose loss over its last steps averages at least this share of its first steps' did not learn.
STUCK_LOSS_SHARE = 0.9


def collapse_reason(record: dict) -> str | None:
    """Why a run is not a result to rank, or None: it gives one answer for every evaluation example
    (one class, one value, one text), or its training loss never fell from where it started: the mean of its
    last window of steps (recipe.loss_curve) is at least STUCK_LOSS_SHARE of its first window's."""
    predictions = (record.get("predictions") or {}).get("predictions") or []
    if len(predictions) > 1 and len({json.dumps(p) for p in predictions}) == 1:
        kind = "text" if isinstance(predictions[0], str) else "class" if isinstance(predictions[0], int) else "value"
        return f"predicts one {kind}"
    curve = lookup(record, "metrics.loss_curve") or []  # records before it was kept: judged by predictions only
    if len(curve) > 1 and curve[0] > 0 and curve[-1] >= STUCK_LOSS_SHARE * curve[0]:
        return "loss did not fall"
    return None


def lookup(config: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(config, dict) or part not in config:
            return None
        config = config[part]
    return config


def matching(records: list[dict], method: str, task: str, model: str, where: dict) -> list[dict]:
    """ok records of one method on one task and model whose config has the `where` values."""
    return [
        r
        for r in records
        if r["status"] == "ok"
        and r["run"]["method"] == method
        and r["run"]["task"] == task
        and r["run"]["model"] == model
        and all(lookup(r["config"], k) == v for k, v in where.items())
    ]


def cell(values: list[float]) -> Cell | None:
    if not values:
        return None  # missing stays missing, never filled
    return Cell(statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None, len(values))


def setting_options(record: dict, pinned: frozenset[str] = frozenset()) -> dict:
    """What a run's experiment is besides its method, task, model and seed: the method's options (bare
    names), the budget, the trainer's options and the task's subset options (dotted), but those of the
    `pinned` task options (dotted: a table's row fixes them per column). Only runs with the same setting are
    seeds of one result."""
    config = record.get("config") or {}
    options = {k: v for k, v in (config.get("method") or {}).items() if k != "name"}
    options["budget"] = lookup(record, "budget.name") or lookup(config, "budget.name")
    trainer = {k: v for k, v in (config.get("trainer") or {}).items() if k not in UNHASHED_TRAINER_KEYS}
    options |= {f"trainer.{k}": v for k, v in trainer.items()}
    for key in TASK_SETTINGS:
        if f"task.{key}" not in pinned and (value := lookup(config, f"task.{key}")) is not None:
            options[f"task.{key}"] = value
    return options


def with_added_options(records: list[dict]) -> list[dict]:
    """The records, where a run's method config lacks an option that every other run of its method sets to one
    value given that value (in a copy): the option was added to the method after the run, at the behaviour the
    run had (lora's corda_batches, read only under init=corda, came after the first lora runs), so it does not
    make the earlier run a setting of its own. An option set to two values among the others stays missing."""
    values: dict[str, dict[str, set[str]]] = {}
    for r in records:
        for name, value in ((r.get("config") or {}).get("method") or {}).items():
            values.setdefault(r["run"]["method"], {}).setdefault(name, set()).add(json.dumps(value, default=str))
    filled = []
    for r in records:
        method = (r.get("config") or {}).get("method")
        added = {
            name: json.loads(next(iter(held)))
            for name, held in values.get(r["run"]["method"], {}).items()
            if method is not None and name not in method and len(held) == 1
        }
        filled.append({**r, "config": {**r["config"], "method": {**method, **added}}} if added else r)
    return filled


def setting_key(record: dict, pinned: frozenset[str] = frozenset()) -> str:
    return json.dumps(setting_options(record, pinned), sort_keys=True, default=str)


def value_text(value) -> str:
    """An option's value alone: "8", weight types joined ("q+v")."""
    return "+".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def option_text(name: str, value) -> str:
    """Short: "r=8", a budget by its name, weight types joined ("q+v")."""
    text = value_text(value)
    return text if isinstance(value, (list, tuple)) or name == "budget" else f"{name}={text}"


def varying_options(options_by_key: dict[str, dict]) -> list[str]:
    """The names of the options whose values differ between these settings, sorted."""
    names = sorted({name for options in options_by_key.values() for name in options})
    return [n for n in names if len({json.dumps(o.get(n), default=str) for o in options_by_key.values()}) > 1]


def varying_labels(options_by_key: dict[str, dict]) -> dict[str, str]:
    """setting key -> the options that differ between these settings ("r=4, task.max_train_samples=300")."""
    varying = varying_options(options_by_key)
    return {
        key: ", ".join(option_text(n, options[n]) for n in varying if options.get(n) is not None)
        for key, options in options_by_key.items()
    }


def method_families(records: list[dict]) -> dict[str, str]:
    """method -> the family its records name (run.method_family, as the run found it in the registry): reports
    read it from the records, so registering a method later changes no old report."""
    families = {}
    for r in records:
        families.setdefault(r["run"]["method"], set()).add(r["run"].get("method_family") or UNKNOWN_FAMILY)
    return {method: "/".join(sorted(names)) for method, names in sorted(families.items())}
