"""Table specifications and building tables from records.

A spec says which published rows and columns a survey table has and how our records map onto them;
`build` turns records into plain data (labelled cells) for the renderers. Pure: no clock, no I/O
beyond reading the reference CSV."""

import csv
import statistics
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from peftbench.fields import final_metric, metric_of, record_field
from peftbench.metrics import resampled
from peftbench.report.aggregate import (
    Cell,
    cell,
    collapse_reason,
    lookup,
    matching,
    method_families,
    setting_key,
    setting_options,
    varying_labels,
)

REFERENCE_DIR = Path(__file__).resolve().parent.parent.parent / "reference"
SIGNIFICANCE_LEVEL = 0.05
BOOTSTRAP_SAMPLES = 1000


@dataclass(frozen=True)
class Column:
    label: str  # as the paper heads it
    published: str | None = None  # the reference CSV's column; None: ours only
    ours: str | None = None  # a record field in fields.py ("metrics.final.accuracy"); None: the paper's only
    task: str | None = None  # our task for this column; None: the table's task
    scale: float | None = None  # ours x scale = the paper's units (100 for percentages); None: the field's unit
    relative_to: str | None = None  # a method of ours: ours as % of its row's ours (e.g. time relative to full_ft)
    ranked: bool = True  # False: no best (a parameter count the rows are matched on, not an outcome)
    decimals: int = 1  # digits shown after the point (the paper's precision)

    def direction(self) -> bool | None:
        """True: higher is better; False: lower; None: no best in this column."""
        if self.ours is None or not self.ranked:
            return None
        return record_field(self.ours).higher_is_better

    def ours_scale(self) -> float:
        return record_field(self.ours).scale if self.scale is None else self.scale


@dataclass(frozen=True)
class Row:
    label: str  # as the paper names it
    published: dict = field(default_factory=dict)  # reference CSV values selecting the paper's row; empty: none
    method: str | None = None  # our method; None: we have no such method yet
    where: dict = field(default_factory=dict)  # config values our records must have (e.g. {"method.r": 8})
    setting: str | None = None  # one setting (aggregate.setting_key) of a row whose runs have several


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    reference: str | None  # CSV under reference/; None: a table of ours only
    paper_setting: str  # the model/data the paper's numbers are for
    task: str | None  # our task for columns that name none
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    paper_model: str | None = None  # our model config that is the paper's model: then the difference is shown
    method_rows: bool = False  # True: after `rows`, one row per method our records of the task and model hold
    report_task: bool = False  # True: `task` is the report's (python -m peftbench.report task=...), `task` its default


@dataclass(frozen=True)
class Entry:
    paper: float | None
    ours: Cell | None
    indistinguishable_from_best: bool = False  # not significantly different from the column's best
    test: str | None = None  # how that was decided: "bootstrap" (paired, over evaluation examples) or "welch"
    collapsed: int = 0  # of the cell's runs, those that collapsed (aggregate.collapse_reason): marked, not ranked


@dataclass(frozen=True)
class Collapsed:
    runs: int  # the row's runs with a task metric
    reasons: dict  # reason -> how many of them collapsed so (aggregate.collapse_reason)


@dataclass(frozen=True)
class BuiltTable:
    spec: TableSpec
    model: str  # our model
    entries: dict  # (row label, column label) -> Entry
    best: dict  # column label -> row label with our best mean
    rows: tuple[Row, ...] = ()  # the spec's rows, each split by setting where its runs differ in more than the seed
    collapsed: dict = field(default_factory=dict)  # row label -> Collapsed, over its task-metric cells
    subsets: dict = field(default_factory=dict)  # task -> the training subset its full-data rows read (see build)


def published_value(reference: list[dict], selector: dict, column: str | None) -> float | None:
    if not selector or column is None:
        return None
    for row in reference:
        if all(row.get(k) == v for k, v in selector.items()):
            text = row.get(column)
            return float(text) if text not in (None, "") else None
    return None


def pinned(row: Row) -> frozenset[str]:
    """The task options the row fixes for each column (the full training set): not part of its runs' setting."""
    return frozenset(key for key in row.where if key.startswith("task."))


def column_where(row: Row, task: str | None, subsets: dict[str, int]) -> dict:
    """The config values the row's runs must have in a column of `task`: where the row asks for the full
    training set and `subsets` names a subset for the task, that subset instead."""
    if task in subsets and "task.max_train_samples" in row.where and row.where["task.max_train_samples"] is None:
        return {**row.where, "task.max_train_samples": subsets[task]}
    return row.where


def our_runs(
    records: list[dict], spec: TableSpec, row: Row, column: Column, model: str, subsets: dict[str, int]
) -> list[dict]:
    if row.method is None or column.ours is None:
        return []
    task = column.task or spec.task
    runs = matching(records, row.method, task, model, column_where(row, task, subsets))
    return [
        r for r in runs if lookup(r, column.ours) is not None and row.setting in (None, setting_key(r, pinned(row)))
    ]


def recorded_method_rows(records: list[dict], spec: TableSpec, model: str) -> tuple[Row, ...]:
    """One row per method with ok runs of the spec's task on this model, named with the family its records
    hold ("lora (reparametrised)"): from the records alone, so registering a method adds no row."""
    runs = [r for r in records if r["status"] == "ok" and r["run"]["task"] == spec.task and r["run"]["model"] == model]
    return tuple(Row(f"{method} ({family})", method=method) for method, family in method_families(runs).items())


def split_by_setting(
    records: list[dict], spec: TableSpec, rows: tuple[Row, ...], model: str, subsets: dict[str, int]
) -> tuple[Row, ...]:
    """Each row as one row per setting of its runs: runs that differ in more than the seed (and the task
    options the row fixes per column) are never pooled as seeds; a split row's label says what differs
    ("lora (reparametrised) [trainer.lr=0]")."""
    split = []
    for row in rows:
        runs = {id(r): r for column in spec.columns for r in our_runs(records, spec, row, column, model, subsets)}
        settings = {setting_key(r, pinned(row)): setting_options(r, pinned(row)) for r in runs.values()}
        if len(settings) <= 1:
            split.append(row)
            continue
        for key, label in sorted(varying_labels(settings).items(), key=lambda item: item[1]):
            split.append(Row(f"{row.label} [{label}]", row.published, row.method, row.where, setting=key))
    return tuple(split)


def row_of(rows: tuple[Row, ...], method: str) -> str | None:
    """The label of the method's row; None when it has none, or one per setting (no single base to divide by)."""
    labels = [row.label for row in rows if row.method == method]
    return labels[0] if len(labels) == 1 else None


def paired_bootstrap_not_worse(best_runs: list[dict], other_runs: list[dict], metric: str) -> bool | None:
    """Whether `other` is not significantly worse than `best` by a paired bootstrap over evaluation
    examples (each side: its metric averaged over seeds); None without predictions on the same examples."""
    predictions = [r.get("predictions") for r in best_runs + other_runs]
    if not best_runs or not other_runs or any(p is None for p in predictions):
        return None
    if any(isinstance(label, list) for label in predictions[0]["labels"]):
        return None  # generated text against its references: a corpus score, not resampled here (Welch's t)
    labels = np.asarray(predictions[0]["labels"])
    if any(p["labels"] != predictions[0]["labels"] for p in predictions):
        return None
    higher = final_metric(metric).higher_is_better
    rng = np.random.default_rng(0)  # fixed: the same records give the same report
    samples = np.stack([rng.integers(0, len(labels), len(labels)) for _ in range(BOOTSTRAP_SAMPLES)])

    def averaged(runs):  # each resample's metric, averaged over the runs (seeds)
        return np.mean(
            [resampled(metric, np.asarray(r["predictions"]["predictions"]), labels, samples) for r in runs], 0
        )

    with np.errstate(all="ignore"):
        b, o = averaged(best_runs), averaged(other_runs)
    other_not_worse = int(np.sum(o >= b if higher else o <= b))
    return other_not_worse / BOOTSTRAP_SAMPLES >= SIGNIFICANCE_LEVEL


def welch_not_worse(best: list[float], other: list[float]) -> bool:
    """Whether `other` is not significantly different from `best` (two-sided Welch's t over seeds)."""
    if len(best) < 2 or len(other) < 2:
        return False
    if statistics.pvariance(best) == 0 and statistics.pvariance(other) == 0:  # t is undefined: compare exactly
        return statistics.mean(best) == statistics.mean(other)
    with warnings.catch_warnings():  # near-identical values: scipy warns of precision loss, the p-value is still sound
        warnings.simplefilter("ignore", RuntimeWarning)
        return bool(stats.ttest_ind(best, other, equal_var=False).pvalue >= SIGNIFICANCE_LEVEL)


def build(spec: TableSpec, records: list[dict], model: str, subsets: dict[str, int] | None = None) -> BuiltTable:
    """The table from the records. `subsets` (task -> training examples) lets the rows that ask for a task's
    full training set read runs on a seeded subset of it instead (the published grid's SST-2 is 5,000
    examples); the caption says so for each task where it filled a cell."""
    subsets = subsets or {}
    reference = list(csv.DictReader(open(REFERENCE_DIR / spec.reference, encoding="utf-8"))) if spec.reference else []
    entries, best, collapsed, measured, used = {}, {}, {}, {}, {}
    rows = spec.rows
    if spec.method_rows:
        rows += recorded_method_rows(records, spec, model)
    rows = split_by_setting(records, spec, rows, model, subsets)
    for column in spec.columns:
        task = column.task or spec.task
        runs = {row.label: our_runs(records, spec, row, column, model, subsets) for row in rows}
        if any(runs[row.label] and column_where(row, task, subsets) != row.where for row in rows):
            used[task] = subsets[task]
        scale = column.ours_scale() if column.ours else None
        metric = metric_of(column.ours) if column.ours else None
        reasons = {label: [collapse_reason(r) for r in rs] if metric else [] for label, rs in runs.items()}
        for label, found in reasons.items():
            for run, reason in zip(runs[label], found):
                measured.setdefault(label, set()).add(id_of(run))
                if reason:
                    collapsed.setdefault(label, {}).setdefault(reason, set()).add(id_of(run))
        every_run_collapsed = {label for label, found in reasons.items() if found and all(found)}
        values = {label: [scale * lookup(r, column.ours) for r in rs] for label, rs in runs.items()}
        if column.relative_to:
            base = cell(values.get(row_of(rows, column.relative_to), []))
            values = {label: [100 * v / base.mean for v in vs] if base else [] for label, vs in values.items()}
        direction = column.direction()
        # a row whose every run collapsed is no candidate for the best
        scored = [(cell(vs).mean, label) for label, vs in values.items() if vs and label not in every_run_collapsed]
        if scored and direction is not None:
            best[column.label] = (max if direction else min)(scored)[1]
        for row in rows:
            leader = best.get(column.label)
            close, test = False, None
            if leader is not None and row.label != leader and values[row.label]:
                bootstrap = paired_bootstrap_not_worse(runs[leader], runs[row.label], metric) if metric else None
                close, test = (
                    (bootstrap, "bootstrap")
                    if bootstrap is not None
                    else (welch_not_worse(values[leader], values[row.label]), "welch")
                )
            entries[(row.label, column.label)] = Entry(
                published_value(reference, row.published, column.published),
                cell(values[row.label]),
                close,
                test,
                sum(reason is not None for reason in reasons[row.label]),
            )
    counts = {
        label: Collapsed(len(measured[label]), {reason: len(ids) for reason, ids in sorted(found.items())})
        for label, found in collapsed.items()
    }
    return BuiltTable(spec, model, entries, best, rows, counts, used)


def id_of(record: dict) -> str:
    return record["run"].get("id") or str(id(record))
