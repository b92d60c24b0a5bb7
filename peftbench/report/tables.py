"""Table specifications: which published rows and columns a survey table has, and how our records
map onto them. A table is built as plain data (rows of labelled cells) for the renderers."""

import csv
from dataclasses import dataclass, field
from pathlib import Path

from peftbench.metrics import METRICS
from peftbench.report.aggregate import Cell, cell, matching

REFERENCE_DIR = Path(__file__).resolve().parent.parent.parent / "reference"


@dataclass(frozen=True)
class Column:
    label: str  # as the paper heads it
    task: str  # our task name
    metric: str  # our metric name (its direction decides "best")
    published: str  # the reference CSV's column
    scale: float = 100.0  # ours x scale = the paper's units


@dataclass(frozen=True)
class Row:
    label: str  # as the paper names it
    published: dict  # reference CSV values that select the paper's row
    method: str | None  # our method; None: we have no such method
    where: dict = field(default_factory=dict)  # config values our records must have (e.g. method.r)


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    reference: str  # CSV under reference/
    paper_model: str  # the model the paper's numbers are for
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class BuiltTable:
    spec: TableSpec
    model: str  # our model
    cells: dict  # (row label, column label) -> {"paper": float | None, "ours": Cell | None}
    best: dict  # column label -> row label of our best mean


def published_value(rows: list[dict], selector: dict, column: str) -> float | None:
    for row in rows:
        if all(row.get(k) == v for k, v in selector.items()):
            return float(row[column]) if row.get(column) not in (None, "") else None
    return None


def build(spec: TableSpec, records: list[dict], model: str) -> BuiltTable:
    reference = list(csv.DictReader(open(REFERENCE_DIR / spec.reference, encoding="utf-8")))
    cells, best = {}, {}
    for column in spec.columns:
        for row in spec.rows:
            ours = None
            if row.method:
                runs = matching(records, row.method, column.task, model, row.where)
                ours = cell([column.scale * r["metrics"]["final"][column.metric] for r in runs])
            cells[(row.label, column.label)] = {"paper": published_value(reference, row.published, column.published), "ours": ours}
        scored = [(cells[(row.label, column.label)]["ours"], row.label) for row in spec.rows if cells[(row.label, column.label)]["ours"]]
        if scored:
            pick = max if METRICS[column.metric].higher_is_better else min
            best[column.label] = pick(scored, key=lambda item: item[0].mean)[1]
    return BuiltTable(spec, model, cells, best)


GLUE_COLUMNS = (
    Column("MRPC", "mrpc", "accuracy", "mrpc"),
    Column("CoLA", "cola", "matthews_corr", "cola"),
    Column("RTE", "rte", "accuracy", "rte"),
    Column("STS-B", "stsb", "pearson", "stsb"),
    Column("SST-2", "sst2", "accuracy", "sst2"),
)

SPECS = {
    "lora_table2": TableSpec(
        name="lora_table2",
        title="LoRA Table 2 (Hu et al. 2021): GLUE dev, RoBERTa-base",
        reference="lora_table2_glue.csv",
        paper_model="RoBERTa-base",
        columns=GLUE_COLUMNS,
        rows=(
            Row("FT", {"model": "RoBERTa-base", "method": "FT"}, "full_ft"),
            Row("BitFit", {"model": "RoBERTa-base", "method": "BitFit"}, "bitfit"),
            Row("AdptD (0.3M)", {"model": "RoBERTa-base", "method": "AdapterD (AdptD)", "trainable_params_M": "0.3"}, None),
            Row("AdptD (0.9M)", {"model": "RoBERTa-base", "method": "AdapterD (AdptD)", "trainable_params_M": "0.9"}, None),
            Row("LoRA", {"model": "RoBERTa-base", "method": "LoRA"}, "lora", {"method.r": 8}),
        ),
    ),
}
