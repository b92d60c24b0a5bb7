"""Table specifications and building tables from records.

A spec says which published rows and columns a survey table has and how our records map onto them;
`build` turns records into plain data (labelled cells) for the renderers. Pure: no clock, no I/O
beyond reading the reference CSV."""

import csv
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from scipy import stats

from peftbench.metrics import METRICS
from peftbench.report.aggregate import Cell, cell, lookup, matching

REFERENCE_DIR = Path(__file__).resolve().parent.parent.parent / "reference"
SIGNIFICANCE_LEVEL = 0.05


@dataclass(frozen=True)
class Column:
    label: str  # as the paper heads it
    published: str | None = None  # the reference CSV's column; None: ours only
    ours: str | None = None  # dotted path into a record ("metrics.final.accuracy", "params.trainable"); None: paper only
    task: str | None = None  # our task for this column; None: the table's task
    scale: float = 1.0  # ours x scale = the paper's units (100 for percentages)
    relative_to: str | None = None  # a row label: ours as % of that row's ours (e.g. time relative to fine-tuning)
    higher_is_better: bool | None = None  # for cost columns; metric columns take their metric's direction
    decimals: int = 1  # digits shown after the point (the paper's precision)

    def direction(self) -> bool | None:
        """True: higher is better; False: lower; None: no best in this column."""
        if self.ours and self.ours.startswith("metrics.final."):
            return METRICS[self.ours.rsplit(".", 1)[1]].higher_is_better
        return self.higher_is_better


@dataclass(frozen=True)
class Row:
    label: str  # as the paper names it
    published: dict = field(default_factory=dict)  # reference CSV values selecting the paper's row; empty: none
    method: str | None = None  # our method; None: we have no such method yet
    where: dict = field(default_factory=dict)  # config values our records must have (e.g. {"method.r": 8})


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    reference: str | None  # CSV under reference/; None: a table of ours only
    paper_setting: str  # the model/data the paper's numbers are for
    task: str | None  # our task for columns that name none
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Entry:
    paper: float | None
    ours: Cell | None
    indistinguishable_from_best: bool = False  # Welch's t over seeds: not significantly worse than the best


@dataclass(frozen=True)
class BuiltTable:
    spec: TableSpec
    model: str  # our model
    entries: dict  # (row label, column label) -> Entry
    best: dict  # column label -> row label with our best mean


def published_value(reference: list[dict], selector: dict, column: str | None) -> float | None:
    if not selector or column is None:
        return None
    for row in reference:
        if all(row.get(k) == v for k, v in selector.items()):
            text = row.get(column)
            return float(text) if text not in (None, "") else None
    return None


def our_values(records: list[dict], spec: TableSpec, row: Row, column: Column, model: str) -> list[float]:
    if row.method is None or column.ours is None:
        return []
    runs = matching(records, row.method, column.task or spec.task, model, row.where)
    values = [lookup(r, column.ours) for r in runs]
    return [column.scale * v for v in values if v is not None]


def welch_not_worse(best: list[float], other: list[float]) -> bool:
    """Whether `other` is not significantly different from `best` (two-sided Welch's t over seeds)."""
    if len(best) < 2 or len(other) < 2:
        return False
    if statistics.pvariance(best) == 0 and statistics.pvariance(other) == 0:  # t is undefined: compare exactly
        return statistics.mean(best) == statistics.mean(other)
    return bool(stats.ttest_ind(best, other, equal_var=False).pvalue >= SIGNIFICANCE_LEVEL)


def build(spec: TableSpec, records: list[dict], model: str) -> BuiltTable:
    reference = list(csv.DictReader(open(REFERENCE_DIR / spec.reference, encoding="utf-8"))) if spec.reference else []
    entries, best = {}, {}
    for column in spec.columns:
        values = {row.label: our_values(records, spec, row, column, model) for row in spec.rows}
        if column.relative_to:
            base = cell(values.get(column.relative_to, []))
            values = {label: [100 * v / base.mean for v in vs] if base else [] for label, vs in values.items()}
        direction = column.direction()
        scored = [(cell(vs).mean, label) for label, vs in values.items() if vs]
        if scored and direction is not None:
            best[column.label] = (max if direction else min)(scored)[1]
        for row in spec.rows:
            leader = best.get(column.label)
            close = leader is not None and row.label != leader and welch_not_worse(values[leader], values[row.label])
            entries[(row.label, column.label)] = Entry(published_value(reference, row.published, column.published),
                                                       cell(values[row.label]), close)
    return BuiltTable(spec, model, entries, best)
