"""Reports are pure functions of records: exact tables from fixture records."""

import pytest

from peftbench.report.__main__ import build_tables, write_reports
from peftbench.report.aggregate import collapse_reason, with_added_options
from peftbench.report.render import RENDERERS, to_markdown
from peftbench.report.specs import SPECS
from peftbench.report.tables import Column, Row, TableSpec, build


def record(method, task, seed, value, metric="accuracy", model="minilm_l6", status="ok", r=8, **extra):
    return {
        "status": status,
        "run": {"method": method, "task": task, "model": model, "seed": seed},
        "config": {
            "method": {"name": method, "r": r, "target_modules": ["q", "v"]} if method == "lora" else {"name": method}
        },
        "metrics": {"final": {metric: value}},
        **extra,
    }


RECORDS = [
    record("lora", "rte", 0, 0.57),
    record("lora", "rte", 1, 0.56),
    record("lora", "rte", 2, 0.58),
    record("full_ft", "rte", 0, 0.60),
    record("full_ft", "rte", 1, 0.62),
    record("lora", "rte", 3, 0.99, r=4),  # another rank: not the LoRA row's setting
    record("bitfit", "rte", 0, 0.99, status="failed"),  # failed runs never count
    record("bitfit", "rte", 1, 0.50, model="tiny_bert"),  # another model
    record("bitfit", "cola", 0, 0.25, metric="matthews_corr"),
    record("lora", "cola", 0, 0.31, metric="matthews_corr"),
]

SMALL = TableSpec(
    name="small",
    title="A small LoRA Table 2",
    reference="lora_table2_glue.csv",
    paper_setting="RoBERTa-base",
    task=None,
    columns=(
        Column("CoLA", published="cola", ours="metrics.final.matthews_corr", task="cola", scale=100.0),
        Column("RTE", published="rte", ours="metrics.final.accuracy", task="rte", scale=100.0),
        Column("QQP", published="qqp"),
    ),
    rows=(
        Row("FT", {"model": "RoBERTa-base", "method": "FT"}, "full_ft"),
        Row("BitFit", {"model": "RoBERTa-base", "method": "BitFit"}, "bitfit"),
        Row("AdptD (0.3M)", {"model": "RoBERTa-base", "method": "AdapterD (AdptD)", "trainable_params_M": "0.3"}),
        Row("LoRA", {"model": "RoBERTa-base", "method": "LoRA"}, "lora", {"method.r": 8}),
    ),
)

EXPECTED = """A small LoRA Table 2. Paper: RoBERTa-base. Ours: minilm_l6, final epoch, mean ± std over seeds (n runs). –: no number. Bold: our best per column; †: not significantly different from it (paired bootstrap over evaluation examples where predictions are recorded, else Welch's t over seeds; p >= 0.05).

| Method | CoLA paper | CoLA ours | RTE paper | RTE ours | QQP paper |
|---|---|---|---|---|---|
| FT | 63.6 | – | 78.7 | **61.0 ± 1.4 (n=2)** | 91.9 |
| BitFit | 62.0 | 25.0 (n=1) | 81.5 | – | 84.0 |
| AdptD (0.3M) | 60.8 | – | 71.5 | – | 90.2 |
| LoRA | 63.4 | **31.0 (n=1)** | 86.6 | 57.0 ± 1.0 (n=3) † | 90.8 |
"""


def test_markdown_is_exact():
    assert to_markdown(build(SMALL, RECORDS, "minilm_l6")) == EXPECTED


def test_cells_mean_std_best_and_missing():
    table = build(SMALL, RECORDS, "minilm_l6")
    lora_rte = table.entries[("LoRA", "RTE")].ours
    assert (round(lora_rte.mean, 6), round(lora_rte.std, 6), lora_rte.n) == (57.0, 1.0, 3)
    assert table.best == {"RTE": "FT", "CoLA": "LoRA"}
    assert table.entries[("AdptD (0.3M)", "RTE")].ours is None and table.entries[("AdptD (0.3M)", "RTE")].paper == 71.5
    assert table.entries[("BitFit", "RTE")].ours is None  # failed and other-model runs are not ours here


def test_welch_marks_runs_not_distinguishable_from_the_best():
    close = [record("lora", "rte", s, v) for s, v in enumerate((0.60, 0.64, 0.58))] + [
        record("full_ft", "rte", s, v) for s, v in enumerate((0.61, 0.62, 0.63))
    ]
    table = build(SMALL, close, "minilm_l6")
    assert table.best["RTE"] == "FT" and table.entries[("LoRA", "RTE")].indistinguishable_from_best
    apart = [record("lora", "rte", s, v) for s, v in enumerate((0.50, 0.51, 0.50))] + [
        record("full_ft", "rte", s, v) for s, v in enumerate((0.61, 0.62, 0.61))
    ]
    assert not build(SMALL, apart, "minilm_l6").entries[("LoRA", "RTE")].indistinguishable_from_best


def test_relative_columns_divide_by_the_named_row():
    runs = [
        record("full_ft", "rte", 0, 0.6, throughput={"median_step_seconds": 2.0}),
        record("lora", "rte", 0, 0.6, throughput={"median_step_seconds": 1.0}),
    ]
    table = build(SPECS["unipelt_table4"], runs, "minilm_l6")
    assert table.entries[("LoRA", "Train time %")].ours.mean == pytest.approx(50.0)
    assert table.entries[("Fine-tuning", "Train time %")].ours.mean == pytest.approx(100.0)
    assert table.best["Train time %"] == "LoRA"  # lower is better for costs


def test_report_is_a_pure_function_of_the_records(tmp_path):
    first = {p.name: p.read_bytes() for p in write_reports(RECORDS, tmp_path / "a", "minilm_l6")}
    second = {p.name: p.read_bytes() for p in write_reports(list(reversed(RECORDS)), tmp_path / "b", "minilm_l6")}
    assert first == second and len(first) == len(SPECS) * len(RENDERERS)
    assert all(content for content in first.values())
    assert b"\\toprule" in first["lora_table2.tex"] and b"<table>" in first["lora_table2.html"]


def with_predictions(rec, predictions, labels):
    return {**rec, "predictions": {"predictions": predictions, "labels": labels}}


def test_paired_bootstrap_over_examples_when_predictions_are_recorded():
    labels = [i % 2 for i in range(200)]
    right = labels
    wrong_a_third = [1 - y if i % 3 == 0 else y for i, y in enumerate(labels)]
    almost = [1 - y if i == 5 else y for i, y in enumerate(labels)]
    apart = [with_predictions(record("full_ft", "rte", s, 1.0), right, labels) for s in (0, 1)] + [
        with_predictions(record("lora", "rte", s, 0.665), wrong_a_third, labels) for s in (0, 1)
    ]
    entry = build(SMALL, apart, "minilm_l6").entries[("LoRA", "RTE")]
    assert entry.test == "bootstrap" and not entry.indistinguishable_from_best
    close = [
        with_predictions(record("full_ft", "rte", 0, 1.0), right, labels),
        with_predictions(record("lora", "rte", 0, 0.995), almost, labels),
    ]
    entry = build(SMALL, close, "minilm_l6").entries[("LoRA", "RTE")]
    assert entry.test == "bootstrap" and entry.indistinguishable_from_best  # one example apart
    assert build(SMALL, RECORDS, "minilm_l6").entries[("LoRA", "RTE")].test == "welch"  # no predictions recorded


def test_generated_texts_are_compared_over_seeds_not_resampled():
    """A generation run records each example's text and its list of references: no bootstrap, Welch's t."""
    texts, references = ["a red cafe", "a cheap pub"], [["a red cafe", "the red cafe"], ["a cheap pub"]]
    runs = [
        with_predictions(record(method, "rte", seed, score), texts, references)
        for method, score in (("full_ft", 0.7), ("lora", 0.6))
        for seed in (0, 1)
    ]
    entry = build(SMALL, runs, "minilm_l6").entries[("LoRA", "RTE")]
    assert entry.test == "welch" and not entry.indistinguishable_from_best  # 0.6 twice against 0.7 twice


def test_difference_is_shown_only_for_the_papers_model():
    from dataclasses import replace

    same = replace(SMALL, paper_model="roberta_base")
    runs = [record("lora", "rte", 0, 0.866 + 0.01, model="roberta_base")]
    text = to_markdown(build(same, runs, "roberta_base"))
    assert "| RTE paper | RTE ours | RTE Δ |" in text and "| 86.6 | **87.6 (n=1)** | +1.0 |" in text
    assert "Δ" not in to_markdown(build(same, runs, "minilm_l6"))


def with_losses(rec, first, last):
    return {**rec, "metrics": {**rec["metrics"], "loss_curve": [first, (first + last) / 2, last]}}


@pytest.mark.parametrize(
    ("predictions", "losses", "reason"),
    [
        ([1, 1, 1, 1], (0.69, 0.30), "predicts one class"),
        ([2.5, 2.5, 2.5], (1.0, 0.2), "predicts one value"),
        (["a cafe", "a cafe"], (3.0, 1.0), "predicts one text"),
        ([0, 1, 1, 0], (0.69, 0.68), "loss did not fall"),
        ([0, 1, 1, 0], (0.69, 0.30), None),
        ([1], (0.69, 0.30), None),  # one example: one answer is no collapse
    ],
)
def test_collapse_reason(predictions, losses, reason):
    rec = with_losses(with_predictions(record("bitfit", "sst2", 0, 0.5), predictions, [0] * len(predictions)), *losses)
    assert collapse_reason(rec) == reason


def test_a_stuck_loss_is_judged_on_windows_of_steps_not_on_one_batch():
    from peftbench.recipe import loss_curve

    # a run that learned (0.69 -> ~0.35) whose very last batch happened to be hard (0.82): one batch is no verdict
    losses = [0.69] * 10 + [0.5] * 80 + [0.35] * 9 + [0.82]
    assert loss_curve(losses, points=10)[0] == pytest.approx(0.69) and loss_curve(losses)[-1] < 0.6
    learned = {"first_loss": losses[0], "last_loss": losses[-1], "loss_curve": loss_curve(losses)}
    stuck = [0.69 + 0.01 * (i % 3) for i in range(100)]  # flat noise around the start: did not learn
    rec = with_predictions(record("bitfit", "rte", 0, 0.5), [0, 1, 1, 0], [0, 1, 0, 1])
    assert collapse_reason({**rec, "metrics": {**rec["metrics"], **learned}}) is None
    assert (
        collapse_reason({**rec, "metrics": {**rec["metrics"], "loss_curve": loss_curve(stuck)}}) == "loss did not fall"
    )
    # a record from before the curve was kept is judged by its answers only, never by its single batches
    assert collapse_reason({**rec, "metrics": {**rec["metrics"], "first_loss": 0.69, "last_loss": 0.82}}) is None
    assert len(loss_curve(list(range(7)))) == 7 and loss_curve([]) == []  # short runs: one point per step
    assert sum(loss_curve([1.0] * 3 + [2.0] * 3, points=2)) == 3.0  # equal windows, means of each


def test_collapsed_runs_are_marked_counted_and_never_the_best():
    labels = [i % 2 for i in range(40)]
    one_class = [1] * 40
    runs = [
        with_losses(with_predictions(record("bitfit", "rte", s, 0.5), one_class, labels), 0.7, 0.4) for s in (0, 1)
    ]
    runs += [with_losses(with_predictions(record("lora", "rte", 0, 0.45), [1 - y for y in labels], labels), 0.7, 0.3)]
    runs += [with_losses(with_predictions(record("lora", "rte", 1, 0.5), one_class, labels), 0.7, 0.3)]
    small = TableSpec(
        name="collapse",
        title="Collapse",
        reference=None,
        paper_setting="none",
        task="rte",
        columns=(Column("RTE", ours="metrics.final.accuracy", decimals=3),),
        rows=(Row("BitFit", method="bitfit"), Row("LoRA", method="lora")),
    )
    table = build(small, runs, "minilm_l6")
    assert table.entries[("BitFit", "RTE")].collapsed == 2 and table.entries[("LoRA", "RTE")].collapsed == 1
    assert table.best["RTE"] == "LoRA"  # bitfit's 0.50 beats lora's 0.475, but every bitfit run collapsed
    text = to_markdown(table)
    assert "0.500 ± 0.000 (n=2, 2 collapsed)" in text and "**0.475 ± 0.035 (n=2, 1 collapsed)**" in text
    assert "BitFit: 2 predicts one class (of 2); LoRA: 1 predicts one class (of 2)." in text


def test_methods_measured_follows_the_reports_task():
    runs = [record("lora", "sst2", s, 0.8 + s / 100) for s in (0, 1)] + [record("lora", "rte", 0, 0.55)]
    sst2 = build_tables(runs, "minilm_l6", "sst2")["methods_measured"]
    assert sst2.entries[("lora (family not recorded)", "Accuracy")].ours.n == 2
    assert build_tables(runs, "minilm_l6")["methods_measured"].entries[
        ("lora (family not recorded)", "Accuracy")
    ].ours.mean == pytest.approx(0.55)
    assert build_tables(runs, "minilm_l6", "sst2")["adalora_table1"].spec.task == SPECS["adalora_table1"].task


@pytest.mark.parametrize("metric", ["accuracy", "f1", "matthews_corr", "macro_f1", "pearson"])
def test_the_bootstrap_computes_each_resample_as_the_metric_does(metric):
    """The paired bootstrap's vectorised metrics equal the metric on every resample, bit for bit: the
    report's significance marks do not depend on which path computed them."""
    import numpy as np

    from peftbench.metrics import METRICS, resampled

    rng = np.random.default_rng(7)
    classes = 3 if metric == "macro_f1" else 2
    labels = rng.integers(0, classes, 200)
    predictions = np.where(rng.random(200) < 0.7, labels, (labels + 1) % classes)
    if metric == "pearson":
        labels, predictions = rng.random(200) * 5, rng.random(200) * 5
    samples = np.stack([rng.integers(0, 200, 200) for _ in range(100)])
    samples[0] = 0  # a resample of one example drawn 200 times: F1 and MCC take their zero-division value
    expected = [METRICS[metric].compute(predictions[sample], labels[sample]) for sample in samples]
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(resampled(metric, predictions, labels, samples), expected)  # nan == nan


def test_an_option_added_to_a_method_after_a_run_does_not_split_its_seeds():
    older = record("lora", "sst2", 0, 0.80)
    newer = [record("lora", "sst2", s, 0.82) for s in (1, 2)]
    for r in newer:
        r["config"]["method"]["corda_batches"] = 8  # added to lora after the first run, read only under init=corda
    ranked = record("lora", "sst2", 3, 0.90, r=4)
    ranked["config"]["method"]["corda_batches"] = 16
    filled = with_added_options([older, *newer])
    assert filled[0]["config"]["method"]["corda_batches"] == 8 and "corda_batches" not in older["config"]["method"]
    table = build_tables(filled, "minilm_l6", "sst2")["methods_measured"]
    assert [key for key in table.entries if key[1] == "Accuracy"] == [("lora (family not recorded)", "Accuracy")]
    assert table.entries[("lora (family not recorded)", "Accuracy")].ours.n == 3
    # two values among the others: which one the earlier run had is unknown, so it stays a setting of its own
    assert "corda_batches" not in with_added_options([older, *newer, ranked])[0]["config"]["method"]


def test_full_data_rows_read_a_named_subset_of_one_task_and_the_caption_says_so():
    full = {"task.max_train_samples": None}
    spec = TableSpec(
        name="subset",
        title="Full data",
        reference=None,
        paper_setting="full training sets",
        task=None,
        columns=(
            Column("SST-2", ours="metrics.final.accuracy", task="sst2", scale=100.0),
            Column("RTE", ours="metrics.final.accuracy", task="rte", scale=100.0),
        ),
        rows=(Row("LoRA", method="lora", where=full),),
    )

    def run(task, seed, value, samples):
        r = record("lora", task, seed, value)
        return r | {"config": r["config"] | {"task": {"name": task, "max_train_samples": samples}}}

    runs = [
        run("sst2", 0, 0.80, 5000),
        run("sst2", 1, 0.82, 5000),
        run("sst2", 0, 0.99, 100),
        run("rte", 0, 0.55, None),
    ]
    runs += [run("rte", 1, 0.99, 5000)]  # a subset of RTE: the row asks for RTE's full training set
    table = build(spec, runs, "minilm_l6", subsets={"sst2": 5000})
    assert [row.label for row in table.rows] == ["LoRA"]  # SST-2's subset and RTE's full set: one setting, per column
    sst2, rte = table.entries[("LoRA", "SST-2")].ours, table.entries[("LoRA", "RTE")].ours
    assert (round(sst2.mean, 6), sst2.n) == (81.0, 2) and (round(rte.mean, 6), rte.n) == (55.0, 1)
    assert "Ours on sst2: a seeded 5,000-example subset of its training set." in to_markdown(table)
    without = build(spec, runs, "minilm_l6")  # no subset named: full training sets only, and no such sentence
    assert without.entries[("LoRA", "SST-2")].ours is None and "subset" not in to_markdown(without)
