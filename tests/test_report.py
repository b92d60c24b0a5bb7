"""Reports are pure functions of records: exact tables from fixture records."""

from peftbench.report.__main__ import write_reports
from peftbench.report.render import RENDERERS, to_markdown
from peftbench.report.tables import SPECS, build


def record(method, task, seed, value, metric="accuracy", model="minilm_l6", status="ok", r=8):
    return {"status": status, "run": {"method": method, "task": task, "model": model, "seed": seed},
            "config": {"method": {"name": method, "r": r} if method == "lora" else {"name": method}},
            "metrics": {"final": {metric: value}}}


RECORDS = [
    record("lora", "rte", 0, 0.57), record("lora", "rte", 1, 0.56), record("lora", "rte", 2, 0.58),
    record("full_ft", "rte", 0, 0.60),
    record("lora", "rte", 3, 0.99, r=4),  # another rank: not the LoRA row's setting
    record("bitfit", "rte", 0, 0.99, status="failed"),  # failed runs never count
    record("bitfit", "rte", 1, 0.50, model="tiny_bert"),  # another model
    record("bitfit", "cola", 0, 0.25, metric="matthews_corr"), record("lora", "cola", 0, 0.31, metric="matthews_corr"),
]

EXPECTED = """LoRA Table 2 (Hu et al. 2021): GLUE dev, RoBERTa-base. Paper: RoBERTa-base; ours: minilm_l6, GLUE dev, final epoch, mean ± std over seeds (n runs). –: no number. Best of ours per column in bold.

| Method | MRPC paper | MRPC ours | CoLA paper | CoLA ours | RTE paper | RTE ours | STS-B paper | STS-B ours | SST-2 paper | SST-2 ours |
|---|---|---|---|---|---|---|---|---|---|---|
| FT | 90.2 | – | 63.6 | – | 78.7 | **60.0 (n=1)** | 91.2 | – | 94.8 | – |
| BitFit | 92.7 | – | 62.0 | 25.0 (n=1) | 81.5 | – | 90.8 | – | 93.7 | – |
| AdptD (0.3M) | 88.5 | – | 60.8 | – | 71.5 | – | 89.7 | – | 94.2 | – |
| AdptD (0.9M) | 88.4 | – | 62.6 | – | 75.9 | – | 90.3 | – | 94.7 | – |
| LoRA | 89.7 | – | 63.4 | **31.0 (n=1)** | 86.6 | 57.0 ± 1.0 (n=3) | 91.5 | – | 95.1 | – |
"""


def test_lora_table2_markdown_is_exact():
    assert to_markdown(build(SPECS["lora_table2"], RECORDS, "minilm_l6")) == EXPECTED


def test_cells_mean_std_best_and_missing():
    table = build(SPECS["lora_table2"], RECORDS, "minilm_l6")
    lora_rte = table.cells[("LoRA", "RTE")]["ours"]
    assert (round(lora_rte.mean, 6), round(lora_rte.std, 6), lora_rte.n) == (57.0, 1.0, 3)
    assert table.best == {"RTE": "FT", "CoLA": "LoRA"}
    assert table.cells[("AdptD (0.3M)", "RTE")]["ours"] is None and table.cells[("AdptD (0.3M)", "RTE")]["paper"] == 71.5
    assert table.cells[("BitFit", "RTE")]["ours"] is None  # failed and other-model runs are not ours here


def test_report_is_a_pure_function_of_the_records(tmp_path):
    first = {p.name: p.read_bytes() for p in write_reports(RECORDS, tmp_path / "a", "minilm_l6")}
    second = {p.name: p.read_bytes() for p in write_reports(list(reversed(RECORDS)), tmp_path / "b", "minilm_l6")}
    assert first == second and len(first) == len(SPECS) * len(RENDERERS)
    assert all(content for content in first.values())
    assert b"\\toprule" in first["lora_table2.tex"] and b"<strong>57.0" not in first["lora_table2.html"]
