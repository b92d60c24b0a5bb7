"""Plots from run records, for one task and model: Pareto fronts of the main metric against each cost,
the metric against matched parameter budgets, and LoRA's rank x weight-type grid.

Pure functions of the records: runs are grouped and sorted before drawing, means are exact
(`statistics`), and files carry no date or version (SVG with a fixed id salt), so the same records give
byte-identical PNG and SVG files. Figures are built without pyplot: no global state, Agg for PNG."""

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, NullFormatter

from peftbench.fields import Field, final_metric, record_field
from peftbench.report.aggregate import (
    Cell,
    cell,
    lookup,
    method_families,
    setting_key,
    setting_options,
    value_text,
    varying_labels,
    varying_options,
)

PNG_DPI = 150
STYLE = {"svg.hashsalt": "peftbench", "svg.fonttype": "path", "font.size": 9, "axes.grid": True, "grid.alpha": 0.3}
FILE_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
# Fixed per family, so that a method registered later moves no point of an old plot.
FAMILY_COLOURS = {
    "baseline": "#4d4d4d",
    "additive": "#1f77b4",
    "selective": "#2ca02c",
    "reparametrised": "#d62728",
    "hybrid": "#9467bd",
}
UNKNOWN_COLOUR = "#bbbbbb"  # a family without a colour here, or none recorded
MARKERS = "osD^v<>pP*Xh"
LINE_STYLES = ("-", "--", "-.", ":")
BUDGET_LEGEND_COLUMNS = 3


@dataclass(frozen=True)
class Cost:
    field: Field  # what is plotted: path, label, unit and direction (fields.py)
    log: bool = False


COSTS = {
    "trainable_share": Cost(record_field("params.trainable_share"), log=True),
    "peak_train_memory": Cost(record_field("memory.peak_train_bytes")),
    "throughput": Cost(record_field("throughput.samples_per_second")),
    "latency": Cost(record_field("latency.method.median_ms")),
}
BUDGET_AXIS = Cost(record_field("budget.achieved_params"), log=True)

CAPTIONS = {
    "pareto": "Main metric against each cost, one point per method and setting (mean ± std over seeds); "
    "circled points joined by the dashed line are Pareto-optimal.",
    "budget": "Main metric against the achieved trainable parameters under matched budgets, one line per method.",
    "lora_heatmap": "LoRA: main metric (mean over seeds) per rank and adapted weight types; blank: not run.",
}


@dataclass(frozen=True)
class Point:
    method: str
    setting: str  # what sets this setting apart from the method's others; "" when the method has one
    cost: Cell
    metric: Cell


def axis_label(cost: Cost) -> str:
    """ "Peak training memory (MiB)", "Trainable parameters (% of total, log)"."""
    notes = [cost.field.unit] if cost.field.unit else []
    if cost.log:
        notes.append("log")
    if not notes:
        return cost.field.label
    return f"{cost.field.label} ({', '.join(notes)})"


def describe(stem: str) -> str:
    """The caption of a plot file, from its name (pareto_rte_minilm_l6 -> the Pareto caption)."""
    return next((text for prefix, text in CAPTIONS.items() if stem.startswith(prefix)), "")


def pareto_front(points: list[tuple[float, float]], maximize_metric: bool, minimize_cost: bool) -> list[int]:
    """Indices of the (cost, metric) points that no other point dominates (at least as good on both, better
    on one), ordered by cost then index. Equal points do not dominate each other."""
    cost_sign, metric_sign = (1 if minimize_cost else -1), (-1 if maximize_metric else 1)
    keys = [(cost_sign * c, metric_sign * m) for c, m in points]  # both: lower is better
    front = [
        i
        for i, key in enumerate(keys)
        if not any(other[0] <= key[0] and other[1] <= key[1] and other != key for other in keys)
    ]
    return sorted(front, key=lambda i: (points[i][0], i))


def runs_of(records: list[dict], task: str, model: str) -> list[dict]:
    """ok runs of one task and model, in a fixed order."""
    runs = [r for r in records if r.get("status") == "ok" and r["run"]["task"] == task and r["run"]["model"] == model]
    return sorted(
        runs, key=lambda r: (r["run"]["method"], setting_key(r), str(r["run"].get("seed")), r["run"].get("id", ""))
    )


def main_metric(runs: list[dict]) -> str | None:
    names = sorted({lookup(r, "metrics.main_metric") for r in runs} - {None})
    if len(names) > 1:
        raise ValueError(
            f"The records of one task name different main metrics ({', '.join(names)}); a plot needs one."
        )
    return names[0] if names else None


def settings_by_method(runs: list[dict]) -> dict[str, dict[str, dict]]:
    """method -> setting key -> that setting's options."""
    settings = {}
    for r in runs:
        settings.setdefault(r["run"]["method"], {})[setting_key(r)] = setting_options(r)
    return settings


def shared_option(runs: list[dict]) -> str | None:
    """The one option that alone sets apart the settings of every method that has several
    ("task.max_train_samples" in part 4), or None."""
    varying = {tuple(varying_options(s)) for s in settings_by_method(runs).values() if len(s) > 1}
    only = varying.pop() if len(varying) == 1 else ()
    return only[0] if len(only) == 1 else None


def setting_labels(runs: list[dict], shared: str | None = None) -> dict[tuple[str, str], str]:
    """(method, setting key) -> the options that differ between that method's settings ("r=4, q+v"); only the
    value ("1000") where they differ by the `shared` option alone."""
    labels = {}
    for method, options_by_key in settings_by_method(runs).items():
        for key, label in varying_labels(options_by_key).items():
            value = options_by_key[key].get(shared) if shared else None
            labels[(method, key)] = value_text(value) if label and value is not None else label
    return labels


def points(runs: list[dict], metric: str, cost: Cost, shared: str | None = None) -> list[Point]:
    """One point per method and setting: mean (std) over the runs that have both the metric and the cost;
    labelled by the `shared` option's value alone when one is given."""
    groups = {}
    for r in runs:
        value, spent = lookup(r, f"metrics.final.{metric}"), lookup(r, cost.field.path)
        if value is not None and spent is not None:
            groups.setdefault((r["run"]["method"], setting_key(r)), []).append((spent * cost.field.scale, value))
    labels = setting_labels(runs, shared)
    return [
        Point(method, labels[(method, key)], cell([c for c, _ in pairs]), cell([m for _, m in pairs]))
        for (method, key), pairs in sorted(groups.items())
    ]


def method_styles(runs: list[dict]) -> dict[str, dict]:
    """method -> its colour, by the family its records name, and its marker, by its place among the methods of
    that family in these runs (sorted), so (colour, marker) names one method; from the runs alone."""
    families = method_families(runs)
    styles = {}
    for method, family in families.items():
        kin = [name for name, other in families.items() if other == family]  # sorted, as `families` is
        styles[method] = {
            "color": FAMILY_COLOURS.get(family, UNKNOWN_COLOUR),
            "marker": MARKERS[kin.index(method) % len(MARKERS)],
            "label": f"{method} ({family})",
        }
    return styles


def legend_handles(methods: list[str], styles: dict[str, dict], with_front: bool) -> list[Line2D]:
    handles = [Line2D([], [], linestyle="none", **styles[m]) for m in sorted(set(methods))]
    if with_front:
        handles.append(
            Line2D(
                [],
                [],
                color="black",
                linestyle="--",
                marker="o",
                markersize=10,
                markerfacecolor="none",
                label="Pareto-optimal",
            )
        )
    return handles


def direction_text(higher_is_better: bool) -> str:
    return "higher is better" if higher_is_better else "lower is better"


def draw_pareto_panel(axes, panel: list[Point], cost: Cost, maximize_metric: bool, styles: dict[str, dict]) -> None:
    for p in panel:
        style = styles[p.method]
        axes.errorbar(
            p.cost.mean,
            p.metric.mean,
            xerr=p.cost.std,
            yerr=p.metric.std,
            fmt=style["marker"],
            color=style["color"],
            capsize=2,
            markersize=5,
        )
        if p.setting:
            axes.annotate(
                p.setting, (p.cost.mean, p.metric.mean), xytext=(4, 4), textcoords="offset points", fontsize=6
            )
    front_indices = pareto_front(
        [(p.cost.mean, p.metric.mean) for p in panel], maximize_metric, not cost.field.higher_is_better
    )
    front = [panel[i] for i in front_indices]
    xs, ys = [p.cost.mean for p in front], [p.metric.mean for p in front]
    axes.plot(xs, ys, color="black", linestyle="--", linewidth=0.8, zorder=0)
    axes.scatter(xs, ys, s=110, facecolors="none", edgecolors="black", linewidths=0.8, zorder=3)
    if cost.log:
        axes.set_xscale("log")
    axes.set_xlabel(f"{axis_label(cost)}\n({direction_text(cost.field.higher_is_better)})")


def pareto_figure(records: list[dict], task: str, model: str) -> Figure | None:
    """One panel per cost that has data; None when no run has the main metric and any cost."""
    runs = runs_of(records, task, model)
    metric = main_metric(runs)
    if metric is None:
        return None
    # One option telling every method's settings apart: its value beside each point and its name once in the
    # title, as "task.max_train_samples=1000" beside each point covered the others.
    option = shared_option(runs)
    panels = {name: points(runs, metric, cost, option) for name, cost in COSTS.items()}
    panels = {name: panel for name, panel in panels.items() if panel}
    if not panels:
        return None
    maximize = final_metric(metric).higher_is_better
    styles = method_styles(runs)
    figure = Figure(figsize=(max(5.5, 3.6 * len(panels)), 4.4), layout="constrained")
    all_axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for axes, (name, panel) in zip(all_axes, panels.items()):
        draw_pareto_panel(axes, panel, COSTS[name], maximize, styles)
    all_axes[0].set_ylabel(f"{metric}, final epoch, mean ± std over seeds\n({direction_text(maximize)})")
    labelled_by = f" (points labelled by {option})" if option else ""
    figure.suptitle(f"{task} / {model}: {metric} against cost{labelled_by}")
    methods = [p.method for panel in panels.values() for p in panel]
    figure.legend(
        handles=legend_handles(methods, styles, with_front=True), loc="outside lower center", ncols=4, fontsize=7
    )
    return figure


def budget_figure(records: list[dict], task: str, model: str) -> Figure | None:
    """Metric against achieved trainable parameters for runs with a matched budget; one line per method."""
    all_runs = runs_of(records, task, model)
    runs = [r for r in all_runs if lookup(r, BUDGET_AXIS.field.path) is not None]
    metric = main_metric(runs)
    lines = {}
    for r in runs:
        value = lookup(r, f"metrics.final.{metric}")
        if value is not None:
            achieved = lookup(r, BUDGET_AXIS.field.path) * BUDGET_AXIS.field.scale
            lines.setdefault(r["run"]["method"], {}).setdefault(achieved, []).append(value)
    if not lines:
        return None
    styles = method_styles(all_runs)  # as in the Pareto plot of the same task and model
    achieved = [x for by_params in lines.values() for x in by_params]
    # One budget puts every method within a few percent of it: a log axis over less than a decade labels
    # its minor ticks (2.92x10^5, 2.94x10^5, ...) over each other, so a narrow range is drawn linear.
    log = max(achieved) >= 10 * min(achieved)
    legend_rows = math.ceil(len(lines) / BUDGET_LEGEND_COLUMNS)
    figure = Figure(figsize=(8.0, 4.2 + 0.16 * legend_rows), layout="constrained")
    axes = figure.subplots()
    for index, (method, by_params) in enumerate(sorted(lines.items())):
        xs = sorted(by_params)
        cells = [cell(by_params[x]) for x in xs]
        style = styles[method]  # methods of one family share a colour: the line style tells them apart too
        axes.errorbar(
            xs,
            [c.mean for c in cells],
            yerr=[c.std or 0.0 for c in cells],
            fmt=style["marker"],
            linestyle=LINE_STYLES[index % len(LINE_STYLES)],
            color=style["color"],
            capsize=2,
            markersize=5,
            label=style["label"],
        )
    if log:
        axes.set_xscale("log")
        axes.xaxis.set_minor_formatter(NullFormatter())
    axes.xaxis.set_major_formatter(EngFormatter(sep=""))  # 300k, 1.2M
    axes.set_xlabel(axis_label(replace(BUDGET_AXIS, log=log)))
    axes.set_ylabel(
        f"{metric}, final epoch, mean ± std over seeds\n({direction_text(final_metric(metric).higher_is_better)})"
    )
    axes.set_title(f"{task} / {model}: {metric} under matched parameter budgets")
    # Below the axes, as in the Pareto plot: inside them, a legend of thirty methods covers the points.
    figure.legend(loc="outside lower center", ncols=BUDGET_LEGEND_COLUMNS, fontsize=7)
    return figure


def weight_types(target_modules) -> str:
    if isinstance(target_modules, (list, tuple)):
        return "+".join(sorted(map(str, target_modules)))
    return str(target_modules)


def lora_grid(
    records: list[dict], task: str, model: str
) -> tuple[list[int], list[str], np.ndarray, np.ndarray, str | None]:
    """LoRA runs' ranks (sorted), weight types (sorted by count, then name), mean metric and run counts per
    cell (NaN, 0 where nothing ran), and the metric."""
    runs = [
        r
        for r in runs_of(records, task, model)
        if r["run"]["method"] == "lora"
        and lookup(r, "config.method.r") is not None
        and lookup(r, "config.method.target_modules") is not None
    ]
    metric = main_metric(runs)
    values = {}
    for r in runs:
        value = lookup(r, f"metrics.final.{metric}")
        if value is not None:
            key = (int(r["config"]["method"]["r"]), weight_types(r["config"]["method"]["target_modules"]))
            values.setdefault(key, []).append(value)
    ranks = sorted({rank for rank, _ in values})
    types = sorted({kind for _, kind in values}, key=lambda kind: (kind.count("+"), kind))
    means, counts = np.full((len(ranks), len(types)), np.nan), np.zeros((len(ranks), len(types)), dtype=int)
    for (rank, kind), vs in values.items():
        summary = cell(vs)
        at = (ranks.index(rank), types.index(kind))
        means[at], counts[at] = summary.mean, summary.n
    return ranks, types, means, counts, metric


def lora_heatmap_figure(records: list[dict], task: str, model: str) -> Figure | None:
    ranks, types, means, counts, metric = lora_grid(records, task, model)
    if not ranks:
        return None
    higher = final_metric(metric).higher_is_better
    figure = Figure(figsize=(1.2 * len(types) + 2.6, 0.5 * len(ranks) + 2.0), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(means, cmap="viridis" if higher else "viridis_r", aspect="auto")  # NaN cells stay blank
    axes.grid(False)
    axes.set_xticks(range(len(types)), types)
    axes.set_yticks(range(len(ranks)), [str(rank) for rank in ranks])
    axes.set_xlabel("Adapted weight types (target_modules)")
    axes.set_ylabel("Rank r")
    low, high = np.nanmin(means), np.nanmax(means)
    for (row, column), mean in np.ndenumerate(means):
        if not np.isnan(mean):
            upper_half = high > low and (mean - low) / (high - low) > 0.5  # viridis is bright at its top end
            axes.text(
                column,
                row,
                f"{mean:.3f}\nn={counts[row, column]}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if upper_half == higher else "white",
            )
    figure.colorbar(image, ax=axes, label=f"{metric}, final epoch\n({direction_text(higher)})")
    axes.set_title(f"{task} / {model}:\nLoRA rank x weight types")  # one line is wider than one column
    return figure


HASHED_SVG_ID = r"(?:[pm]|image|C\d+_\d+_)[0-9a-f]{10}"  # clip path, marker, image, collection member: a hash


def numbered_svg_ids(svg: str) -> str:
    """matplotlib names an SVG's clip paths, markers, images and collection paths by a hash of their content,
    coordinates in full float text whose last bits differ between CPUs (AVX-512 or not) where the drawn ones,
    printed to 6 decimals, do not: numbered in order of appearance, one figure gives one file on any machine."""
    names: dict[str, str] = {}
    for old in re.findall(f'id="({HASHED_SVG_ID})"', svg):
        names.setdefault(old, f"{old[:-10]}{len(names)}")
    return re.sub(rf"\b{HASHED_SVG_ID}\b", lambda found: names.get(found[0], found[0]), svg)


def save(figure: Figure | None, stem: Path) -> list[Path]:
    """stem.png and stem.svg, without date or version; nothing for no figure."""
    if figure is None:
        return []
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for extension in ("png", "svg"):
        path = stem.with_name(f"{stem.name}.{extension}")
        figure.savefig(path, format=extension, dpi=PNG_DPI, metadata=FILE_METADATA[extension])
        if extension == "svg":
            path.write_text(numbered_svg_ids(path.read_text(encoding="utf-8")), encoding="utf-8")
        paths.append(path)
    return paths


def plot_pareto(records: list[dict], out_dir: Path, model: str, task: str) -> list[Path]:
    with matplotlib.rc_context(STYLE):  # the style is read while drawing and while saving
        return save(pareto_figure(records, task, model), Path(out_dir) / f"pareto_{task}_{model}")


def plot_budget(records: list[dict], out_dir: Path, model: str, task: str) -> list[Path]:
    with matplotlib.rc_context(STYLE):
        return save(budget_figure(records, task, model), Path(out_dir) / f"budget_{task}_{model}")


def plot_lora_heatmap(records: list[dict], out_dir: Path, model: str, task: str) -> list[Path]:
    with matplotlib.rc_context(STYLE):
        return save(lora_heatmap_figure(records, task, model), Path(out_dir) / f"lora_heatmap_{task}_{model}")


def write_plots(records: list[dict], out_dir: Path, model: str, task: str) -> list[Path]:
    """Every plot that has data, as PNG and SVG under out_dir."""
    plots = (plot_pareto, plot_budget, plot_lora_heatmap)
    return [path for plot in plots for path in plot(records, out_dir, model, task)]
