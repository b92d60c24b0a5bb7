"""Plots, the results index and W&B reporting: pure functions of fixture records."""

import math
import re
from dataclasses import replace
from types import SimpleNamespace

import matplotlib.image
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from peftbench.methods import METHODS, register_method
from peftbench.methods.registry import FAMILIES
from peftbench.records import write_record
from peftbench.report.__main__ import build_tables, main, write_reports
from peftbench.report.index import INTRODUCTION, write_index
from peftbench.report.plots import (
    FAMILY_COLOURS,
    budget_figure,
    lora_grid,
    lora_heatmap_figure,
    method_styles,
    pareto_figure,
    pareto_front,
    write_plots,
)
from peftbench.report.render import RENDERERS
from peftbench.report.wandb_log import log_report, read_wandb_records

MODEL, TASK = "minilm_l6", "rte"


def record(
    method,
    seed,
    accuracy,
    share,
    memory_mb=None,
    samples_per_second=None,
    latency_ms=None,
    budget=None,
    status="ok",
    **options,
):
    costs = {"params": {"trainable": int(share * 22_000_000), "total": 22_000_000, "trainable_share": share}}
    if memory_mb is not None:
        costs["memory"] = {"peak_train_bytes": memory_mb * 2**20}
    if samples_per_second is not None:
        costs["throughput"] = {
            "samples_per_second": samples_per_second,
            "median_step_seconds": 16 / samples_per_second,
        }
    if latency_ms is not None:
        costs["latency"] = {"method": {"median_ms": latency_ms, "overhead_pct": 0.0}, "merged": None}
    run = {
        "method": method,
        "method_family": METHODS[method].family,
        "task": TASK,
        "model": MODEL,
        "seed": seed,
        "id": f"{method}-{seed}",
    }  # the family as the recipe records it
    return {
        "status": status,
        "run": run,
        "config": {"method": {"name": method, **options}, "task": {"name": TASK, "main_metric": "accuracy"}},
        "metrics": {"main_metric": "accuracy", "final": {"accuracy": accuracy}},
        "budget": budget,
        **costs,
    }


def budget(params):
    return {
        "name": f"params_{params}",
        "target_params": params,
        "target_share": None,
        "knob": "r",
        "value": 1,
        "achieved_params": params,
        "achieved_share": params / 22_000_000,
    }


QV, QKVO = ["q", "v"], ["q", "k", "v", "attn_out"]
RECORDS = [
    *(record("full_ft", s, a, 1.0, 900, 40.0 + s, 10.0) for s, a in enumerate((0.62, 0.64, 0.63))),
    *(record("bitfit", s, a, 0.001, 500, 80.0 + s, 10.1) for s, a in enumerate((0.58, 0.57, 0.59))),
    *(record("lora", s, a, 0.003, 520, 75.0, 10.9, r=8, target_modules=QV) for s, a in enumerate((0.60, 0.61))),
    record("lora", 0, 0.59, 0.0015, 510, 76.0, 10.8, r=4, target_modules=QV),
    record("lora", 0, 0.62, 0.012, 560, 70.0, 11.5, r=8, target_modules=QKVO),
    record("prompt_tuning", 0, 0.53, 0.0004, 480, 90.0, 14.0),
    record("ia3", 0, 0.10, 0.0006, status="failed"),  # failed runs never count
    *(
        record(m, 0, a, p / 22e6, budget=budget(p), r=1)
        for m, rows in (("lora", ((300_000, 0.60), (600_000, 0.61))), ("adalora", ((300_000, 0.59), (600_000, 0.62))))
        for p, a in rows
    ),
]


@pytest.mark.parametrize(
    "points, maximize_metric, minimize_cost, front",
    [
        ([(1, 0.5), (2, 0.7), (3, 0.6), (0.5, 0.4), (2, 0.7), (4, 0.7)], True, True, [3, 0, 1, 4]),
        ([(1, 0.5), (2, 0.7), (3, 0.6), (0.5, 0.4)], True, False, [1, 2]),  # throughput: more is better
        ([(1, 0.5), (2, 0.7), (3, 0.6), (0.5, 0.4)], False, True, [3]),  # a loss: lower metric is better
        ([], True, True, []),
    ],
)
def test_pareto_front_is_exact(points, maximize_metric, minimize_cost, front):
    assert pareto_front(points, maximize_metric, minimize_cost) == front


def test_every_plot_is_written_valid_and_byte_identical(tmp_path):
    first = write_plots(RECORDS, tmp_path / "a", MODEL, TASK)
    second = write_plots(list(reversed(RECORDS)), tmp_path / "b", MODEL, TASK)
    stems = [f"{kind}_{TASK}_{MODEL}" for kind in ("pareto", "budget", "lora_heatmap")]
    assert [p.name for p in first] == [f"{stem}.{ext}" for stem in stems for ext in ("png", "svg")]
    for path, again in zip(first, second):
        assert path.stat().st_size > 0 and path.read_bytes() == again.read_bytes(), path.name
        if path.suffix == ".png":
            assert matplotlib.image.imread(path).ndim == 3
        else:
            assert b"<svg" in path.read_bytes() and b"<dc:date>" not in path.read_bytes()


def test_an_svg_does_not_depend_on_the_last_bits_of_its_coordinates(tmp_path, monkeypatch):
    """Its ids hash the coordinates' full float text, which differs between CPUs: a salt changes every hash."""
    import peftbench.report.plots as plots

    first = [p for p in write_plots(RECORDS, tmp_path / "a", MODEL, TASK) if p.suffix == ".svg"]
    monkeypatch.setitem(plots.STYLE, "svg.hashsalt", "another machine")
    second = [p for p in write_plots(RECORDS, tmp_path / "b", MODEL, TASK) if p.suffix == ".svg"]
    for path, again in zip(first, second, strict=True):
        assert re.search(r'clip-path="url\(#p\d+\)"', path.read_text()), path.name  # numbered, not hashed
        assert path.read_bytes() == again.read_bytes(), path.name


def test_panels_without_data_are_skipped_and_no_data_writes_nothing(tmp_path):
    older = [record("lora", s, 0.6, 0.003, r=8, target_modules=QV) for s in range(2)]  # no memory/throughput/latency
    assert len(pareto_figure(older, TASK, MODEL).axes) == 1
    assert pareto_figure(RECORDS, TASK, MODEL).axes.__len__() == 4
    assert write_plots(RECORDS, tmp_path, MODEL, "cola") == []


def drawn(figure):
    """The renderer of the figure, drawn as its PNG is: text extents are known only once drawn."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas.get_renderer()


def drawn_labels_overlap(figure):
    """Whether any two of the x axis's drawn tick labels overlap, and the legend overlaps the axes."""
    axes, renderer = figure.axes[0], drawn(figure)
    ticks = [t for t in axes.get_xticklabels(which="both") if t.get_visible() and t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in ticks]
    ticks_overlap = any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    legend_overlaps = figure.legends[0].get_window_extent(renderer).overlaps(axes.get_window_extent(renderer))
    return ticks_overlap, legend_overlaps, len(ticks)


@pytest.mark.parametrize("spread, scale", [(0.05, "linear"), (20.0, "log")])
def test_a_budget_plot_of_every_method_keeps_its_legend_and_tick_labels_readable(spread, scale):
    """One budget of thirty methods (291k-306k for 300k) once drew its legend over the points and labelled
    a log axis's minor ticks over each other; budgets a decade apart keep a log axis."""
    methods = sorted(METHODS)[:30]
    records = [
        record(m, 0, 0.8, 0, budget=budget(int(290_000 * (1 + spread * i / len(methods)))))
        for i, m in enumerate(methods)
    ]
    figure = budget_figure(records, TASK, MODEL)
    assert figure.axes[0].get_xscale() == scale
    ticks_overlap, legend_overlaps, drawn = drawn_labels_overlap(figure)
    assert drawn >= 2 and not ticks_overlap and not legend_overlaps


def test_points_differing_in_one_option_are_labelled_by_its_value_and_the_title_names_it():
    """Low resource's points read "task.max_train_samples=1000" each and covered each other."""
    runs = [record("lora", 0, 0.6 + r / 100, r / 1e4, 500, r=r, target_modules=QV) for r in (4, 8)]
    pareto = pareto_figure([*runs, record("bitfit", 0, 0.58, 0.001, 500)], TASK, MODEL)
    assert sorted(t.get_text() for t in pareto.axes[0].texts) == ["4", "8"]
    assert pareto.get_suptitle().endswith("accuracy against cost (points labelled by r)")
    several = pareto_figure(RECORDS, TASK, MODEL)  # r and the weight types differ: the labels keep both names
    assert "r=4, q+v" in {t.get_text() for t in several.axes[0].texts}
    assert several.get_suptitle().endswith("against cost")


def test_a_one_cell_lora_heatmap_keeps_its_title_and_colour_bar_label_on_the_figure():
    """One rank and one weight type make a narrow figure: a one-line title and colour bar label ran off it."""
    figure = lora_heatmap_figure([record("lora", 0, 0.8, 0.003, r=8, target_modules=QV)], TASK, MODEL)
    renderer = drawn(figure)
    image, colour_bar = figure.axes
    for text in (image.title, colour_bar.yaxis.label):
        box = text.get_window_extent(renderer)
        assert text.get_text() and figure.bbox.x0 <= box.x0 and box.x1 <= figure.bbox.x1, text.get_text()
        assert figure.bbox.y0 <= box.y0 and box.y1 <= figure.bbox.y1, text.get_text()


def test_styles_come_from_the_records_families_and_the_methods_they_hold():
    styles = method_styles([r for r in RECORDS if r["status"] == "ok"])
    assert set(FAMILIES) <= set(FAMILY_COLOURS)  # every family has its fixed colour
    assert styles["adalora"]["color"] == styles["lora"]["color"] == FAMILY_COLOURS["reparametrised"]
    assert [styles[m]["marker"] for m in ("adalora", "lora")] == ["o", "s"]  # sorted within the family
    assert styles["bitfit"]["label"] == "bitfit (selective)"


def test_a_method_registered_later_moves_no_plot_and_adds_no_table_row(tmp_path):
    def rendered(out_dir):
        plots = {p.name: p.read_bytes() for p in write_plots(RECORDS, out_dir, MODEL, TASK)}
        return plots, [row.label for row in build_tables(RECORDS, MODEL)["methods_measured"].rows]

    before = rendered(tmp_path / "before")
    # First by name in LoRA's family: a marker given by place among registered methods would move LoRA's.
    register_method(replace(METHODS["lora"], name="aaa_later_lora"))
    try:
        after = rendered(tmp_path / "after")
    finally:
        del METHODS["aaa_later_lora"]
    assert after == before
    assert not any(label.startswith("aaa_later_lora") for label in after[1])


def test_lora_grid_sorts_axes_and_leaves_missing_cells_blank():
    ranks, types, means, counts, metric = lora_grid(RECORDS, TASK, MODEL)
    assert (ranks, types, metric) == ([4, 8], ["q+v", "attn_out+k+q+v"], "accuracy")  # budget runs name no targets
    assert means[1, 0] == pytest.approx(0.605) and counts[1, 0] == 2 and means[1, 1] == pytest.approx(0.62)
    assert math.isnan(means[0, 1]) and counts[0, 1] == 0


def test_index_lists_every_table_and_embeds_every_plot(tmp_path):
    results = tmp_path / "results"
    written = write_reports(RECORDS, results / "reports", MODEL) + write_plots(
        RECORDS, results / "reports", MODEL, TASK
    )
    text = write_index(results, written).read_text()
    assert text.startswith(INTRODUCTION) and "\n## Reports\n" in text
    for stem in {p.stem for p in written if p.suffix == ".md"}:
        assert all(f"[{ext}](reports/{stem}.{ext})" in text for ext in RENDERERS), stem
    for png in (p for p in written if p.suffix == ".png"):
        assert f"![{png.stem}](reports/{png.name})" in text and f"[svg](reports/{png.stem}.svg)" in text
    assert write_index(results, list(reversed(written))).read_text() == text


def test_cli_writes_tables_plots_and_index(tmp_path, capsys):
    results = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        main([f"results_dir={results}", f"out_dir={results / 'reports'}"])  # no such folder: nothing is written
    assert exit_info.value.code == 2 and not results.exists()
    for r in RECORDS:
        write_record({"schema_version": 1, **r}, results / f"{r['run']['id']}.json")
    for key, typo in (("task", "rtee"), ("model", "minilm")):  # a name no config nor run has: nothing is written
        with pytest.raises(SystemExit) as exit_info:
            main([f"results_dir={results}", f"out_dir={tmp_path / 'typo'}", f"{key}={typo}"])
        assert exit_info.value.code == 2 and not (tmp_path / "typo").exists()
        assert f"error: {key}='{typo}' is neither a {key} config nor a {key} of the runs" in capsys.readouterr().err
    main([f"results_dir={results}", f"out_dir={results / 'reports'}", "task=cola"])  # no runs of cola: no plots
    output = capsys.readouterr()
    assert "no ok run of task=cola under" in output.err
    printed = output.out.split()
    assert printed[-1] == str(results / "README.md") and all(
        p.endswith((".md", ".tex", ".html", ".csv")) for p in printed
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["wandb=sometimes"])
    assert exit_info.value.code == 2 and "valid: none, offline, online, auto" in capsys.readouterr().err


def test_wandb_offline_logs_tables_and_plots_in_one_run(tmp_path, monkeypatch):
    for name, value in {
        "HOME": tmp_path,
        "WANDB_DIR": tmp_path,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
    }.items():
        monkeypatch.setenv(name, str(value))
    tables = build_tables(RECORDS, MODEL)
    plots = write_plots(RECORDS, tmp_path / "reports", MODEL, TASK)
    run_dir = log_report(tables, plots, "peftbench-test", "offline")
    assert run_dir.parent == tmp_path / "wandb" and run_dir.name.startswith("offline-run-")
    content = b"".join(p.read_bytes() for p in run_dir.glob("run-*.wandb"))
    assert all(f"tables/{name}".encode() in content for name in tables)
    assert all(f"plots/{p.stem}".encode() in content for p in plots if p.suffix == ".png")


class FakeApi:
    """What read_wandb_records uses of wandb.Api(): runs(path) -> runs with config, summary, state."""

    def __init__(self, runs):
        self.runs_by_path = {"team/peftbench": runs}

    def runs(self, path):
        return self.runs_by_path[path]


def fake_run(run_id, state, method, seed, summary, budget_cfg=None):
    config = {
        "model": {"name": MODEL},
        "task": {"name": TASK, "main_metric": "accuracy"},
        "seed": seed,
        "method": {"name": method, "r": 8},
        "budget": budget_cfg or {"name": "none", "params": None, "share": None},
    }
    return SimpleNamespace(
        name=run_id,
        id=run_id,
        path=["team", "peftbench", run_id],
        state=state,
        config=config,
        summary_metrics={"_runtime": 12.0, "config_hash": "abc", **summary},
    )


def test_wandb_project_reader_rebuilds_records_with_a_fake_api():
    summary = {
        "final/accuracy": 0.61,
        "best/accuracy": 0.63,
        "params/trainable": 300_000,
        "params/trainable_share": 0.013,
        "memory/peak_train_bytes": 5e8,
        "throughput/samples_per_second": 70.0,
        "latency/method/median_ms": 11.0,
    }
    api = FakeApi(
        [
            fake_run(
                "run-b", "finished", "lora", 1, summary, {"name": "params_0.3m", "params": 300_000, "share": None}
            ),
            fake_run("run-a", "crashed", "lora", 0, {}),
            SimpleNamespace(
                name="report",
                id="r",
                path=["team", "peftbench", "r"],
                state="finished",
                config={"model": MODEL},
                summary_metrics={},
            ),  # a report run: not a record
        ]
    )
    failed, finished = read_wandb_records(api, "team/peftbench")
    assert failed["status"] == "failed" and failed["run"]["id"] == "run-a"
    assert finished["run"] == {
        "id": "run-b",
        "task": TASK,
        "model": MODEL,
        "method": "lora",
        "method_family": "reparametrised",
        "seed": 1,
        "config_hash": "abc",
        "wandb_path": "team/peftbench/run-b",
    }
    assert finished["metrics"] == {"main_metric": "accuracy", "final": {"accuracy": 0.61}, "best": {"accuracy": 0.63}}
    assert finished["latency"] == {"method": {"median_ms": 11.0}} and finished["memory"] == {"peak_train_bytes": 5e8}
    assert finished["budget"] == {
        "name": "params_0.3m",
        "target_params": 300_000,
        "target_share": None,
        "knob": "r",
        "value": 8,
        "achieved_params": 300_000,
        "achieved_share": 0.013,
    }
    assert len(pareto_figure([failed, finished], TASK, MODEL).axes) == 4  # the records feed the plots as local ones do
