"""The results explorer: one self-contained index.html over the records. A table of every method x task x model x
setting (mean ± std over seeds, n), filterable and sortable, and Pareto plots of the task metric against a chosen
cost, drawn as inline SVG by the page's own script (explorer.js) with the Pareto front marked.

No server, no network: the data is embedded as JSON, the script and style are inline, the records are linked by
relative path, so the page works opened from disk and from a static host. Pure: the same records (and links) give
the same bytes: groups sorted, numbers rounded, no timestamps."""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from peftbench.fields import final_metric, record_field
from peftbench.report.aggregate import (
    TASK_SETTINGS,
    cell,
    collapse_reason,
    lookup,
    method_families,
    setting_key,
    setting_options,
    varying_labels,
)
from peftbench.report.index import relative
from peftbench.report.plots import FAMILY_COLOURS, UNKNOWN_COLOUR, main_metric

PAGE_NAME = "index.html"
ASSETS = Path(__file__).resolve().parent  # explorer.html, explorer.css, explorer.js beside this module
SIGNIFICANT_DIGITS = 6  # numbers in the page: more than any column shows, few enough to keep it small


@dataclass(frozen=True)
class Column:
    key: str  # the page's name for it
    path: str  # the record field (fields.py: label, unit, direction, scale)
    heading: str  # short, for the table's header; the field's full label is the header's tooltip
    decimals: int | None  # digits after the point; None: three significant digits (shares span decades)
    pareto_log: bool | None = None  # a cost the Pareto plot offers: True on a log axis; None: not offered


COLUMNS = (
    Column("trainable_share", "params.trainable_share", "Trainable", None, pareto_log=True),
    Column("stored_share", "params.stored_share", "Stored", None),
    Column("peak_memory", "memory.peak_train_bytes", "Peak train memory", 0, pareto_log=False),
    Column("step_time", "throughput.median_step_seconds", "Median step", 3, pareto_log=False),
    Column("overhead_unmerged", "latency.method.overhead_pct", "Overhead unmerged", 1, pareto_log=False),
    Column("overhead_merged", "latency.merged.overhead_pct", "Overhead merged", 1),
    Column("checkpoint", "checkpoint.bytes", "Checkpoint", 2),
)
# Shown in their own columns, so a setting's label names only the method's and trainer's options that differ
OWN_COLUMNS = ("budget", *(f"task.{key}" for key in TASK_SETTINGS))


def rounded(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def summary(values: list[float]) -> list | None:
    """[mean, std (None for one run), n], rounded; None without values."""
    found = cell(values)
    return None if found is None else [rounded(found.mean), rounded(found.std), found.n]


def options_text(options: dict) -> str:
    """ "r=8, alpha=16, target_modules=q+v": every option, lists joined by +."""
    texts = []
    for name, value in options.items():
        shown = "+".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        texts.append(f"{name}={shown}")
    return ", ".join(texts)


def record_links(records_dir: Path, page_dir: Path) -> dict[str, str]:
    """run id -> its record file's URL relative to the page's folder, for every record file under records_dir
    (the recipe names each one <run id>.json); the first in sorted order where an id is found twice."""
    links = {}
    for path in sorted(Path(records_dir).rglob("*.json")):
        if not path.name.startswith(".tmp-"):
            links.setdefault(path.stem, quote(relative(path, page_dir)))
    return links


def run_entry(record: dict, links: dict[str, str]) -> dict:
    entry = {"id": record["run"].get("id"), "seed": record["run"].get("seed")}
    if (href := links.get(entry["id"])) is not None:
        entry["href"] = href
    if (reason := collapse_reason(record)) is not None:
        entry["collapsed"] = reason
    return entry


def setting_texts(groups: dict[tuple, list[dict]]) -> dict[tuple, str]:
    """group key -> what sets its setting apart from the same method's other settings on its task and model
    (budget and task options aside: they have their own columns)."""
    by_method = {}
    for key, runs in groups.items():
        options = {k: v for k, v in setting_options(runs[0]).items() if k not in OWN_COLUMNS}
        by_method.setdefault(key[:3], {})[key] = options
    return {key: label for settings in by_method.values() for key, label in varying_labels(settings).items()}


def column_summary(runs: list[dict], path: str) -> list | None:
    """The field's summary over the runs that have it, in the unit reports show it in."""
    values = [lookup(r, path) for r in runs]
    return summary([value * record_field(path).scale for value in values if value is not None])


def group_entry(key: tuple, runs: list[dict], metric: str | None, setting: str, links: dict[str, str]) -> dict:
    task, model, method, _ = key
    options = setting_options(runs[0])
    method_options = {k: v for k, v in (lookup(runs[0], "config.method") or {}).items() if k != "name"}
    task_options = {k.removeprefix("task."): options[k] for k in OWN_COLUMNS[1:] if k in options}
    values = {column.key: column_summary(runs, column.path) for column in COLUMNS}
    metric_values = [lookup(r, f"metrics.final.{metric}") for r in runs] if metric else []
    return {
        "task": task,
        "model": model,
        "method": method,
        "family": method_families(runs)[method],
        "setting": setting,
        "options": options_text(method_options),
        "task_options": options_text(task_options),
        "budget": options["budget"] or "none",
        "n": len(runs),
        "metric": summary([v for v in metric_values if v is not None]),
        "values": {name: value for name, value in values.items() if value is not None},
        "runs": [run_entry(r, links) for r in runs],
    }


def task_metrics(runs: list[dict]) -> dict[str, str | None]:
    """task -> the main metric its records name (plots.main_metric: one per task)."""
    tasks = sorted({r["run"]["task"] for r in runs})
    return {task: main_metric([r for r in runs if r["run"]["task"] == task]) for task in tasks}


def explorer_groups(runs: list[dict], metrics: dict[str, str | None], links: dict[str, str]) -> list[dict]:
    """One entry per method x task x model x setting of the ok runs, sorted; its runs sorted by seed and id."""
    groups = {}
    for r in runs:
        groups.setdefault((r["run"]["task"], r["run"]["model"], r["run"]["method"], setting_key(r)), []).append(r)
    for found in groups.values():
        found.sort(key=lambda r: (str(r["run"].get("seed")), r["run"].get("id") or ""))
    settings = setting_texts(groups)
    entries = [group_entry(key, found, metrics[key[0]], settings[key], links) for key, found in groups.items()]
    order = ("task", "model", "method", "task_options", "budget", "setting")
    return sorted(entries, key=lambda entry: tuple(entry[name] for name in order))


def column_entry(column: Column) -> dict:
    field = record_field(column.path)
    entry = {
        "key": column.key,
        "heading": column.heading,
        "label": field.label,
        "unit": field.unit,
        "higher_is_better": field.higher_is_better,
        "decimals": column.decimals,
    }
    if column.pareto_log is not None:
        entry["pareto_log"] = column.pareto_log
    return entry


def explorer_data(records: list[dict], links: dict[str, str] | None = None, note: str = "") -> dict:
    """What the page shows, and only that: the groups of the ok runs, the columns and the tasks' metrics with
    their directions (fields.py), the families' colours (as the report's plots) and the count of records not ok."""
    runs = [r for r in records if r.get("status") == "ok"]
    metrics = task_metrics(runs)
    groups = explorer_groups(runs, metrics, links or {})
    not_ok = {}
    for r in records:
        if r.get("status") != "ok":
            not_ok[str(r.get("status"))] = not_ok.get(str(r.get("status")), 0) + 1
    directions = {name: final_metric(name).higher_is_better for name in sorted(set(metrics.values()) - {None})}
    return {
        "note": note,
        "columns": [column_entry(column) for column in COLUMNS],
        "task_metrics": metrics,
        "metric_higher_is_better": directions,
        "colours": {
            family: FAMILY_COLOURS.get(family, UNKNOWN_COLOUR) for family in sorted({g["family"] for g in groups})
        },
        "not_ok": dict(sorted(not_ok.items())),
        "groups": groups,
    }


def embedded_json(data: dict) -> str:
    """JSON that cannot end its <script> element early: <, > and & written as \\u escapes."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(data: dict) -> str:
    script, style = (ASSETS / "explorer.js").read_text("utf-8"), (ASSETS / "explorer.css").read_text("utf-8")
    if "</script" in script.lower() or "</style" in style.lower():
        raise ValueError("explorer.js and explorer.css must not close their own element; write <\\/ instead.")
    parts = {"STYLE": style, "DATA": embedded_json(data), "SCRIPT": script}
    template = (ASSETS / "explorer.html").read_text("utf-8")
    return re.sub("@(STYLE|DATA|SCRIPT)@", lambda marker: parts[marker.group(1)], template)  # one pass


def write_explorer(records: list[dict], out_dir: Path, links: dict[str, str] | None = None, note: str = "") -> Path:
    """out_dir/index.html over the records; `links` (record_links) maps run ids to their record files' URLs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PAGE_NAME
    path.write_text(page(explorer_data(records, links, note)), encoding="utf-8")
    return path
