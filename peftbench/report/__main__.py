"""python -m peftbench.report [results_dir=results] [out_dir=results/reports] [model=minilm_l6] [task=rte]
                             [wandb=none] [wandb_project=peftbench]

Writes every table spec as Markdown, LaTeX, HTML and CSV (methods_measured for `task`), the plots for one
task and model as PNG and SVG, <out_dir>/index.html (the results explorer: every run, filterable and sortable,
Pareto plots; opens from disk) and <results_dir>/README.md linking them all; with wandb=offline|online|auto
it also logs them to one W&B run. results_dir=wandb:<entity>/<project> reads the records from W&B instead
(the index then goes to out_dir)."""

import sys
from dataclasses import replace
from pathlib import Path

from peftbench.records import read_records
from peftbench.report.aggregate import with_added_options
from peftbench.report.explorer import record_links, write_explorer
from peftbench.report.index import write_index
from peftbench.report.plots import write_plots
from peftbench.report.render import RENDERERS
from peftbench.report.specs import SPECS
from peftbench.report.tables import BuiltTable, build
from peftbench.report.wandb_log import WANDB_SOURCE, log_report, read_wandb_records

DEFAULTS = {
    "results_dir": "results",
    "out_dir": "results/reports",
    "model": "minilm_l6",
    "task": "rte",
    "wandb": "none",
    "wandb_project": "peftbench",
}
WANDB_MODES = ("none", "offline", "online", "auto")


def build_tables(
    records: list[dict], model: str, task: str = DEFAULTS["task"], subsets: dict[str, int] | None = None
) -> dict[str, BuiltTable]:
    """Every spec's table; those that follow the report's task (TableSpec.report_task) are built for `task`.
    `subsets`: see tables.build."""
    specs = {name: replace(spec, task=task) if spec.report_task else spec for name, spec in SPECS.items()}
    return {name: build(spec, records, model, subsets) for name, spec in specs.items()}


def write_tables(tables: dict[str, BuiltTable], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in tables.items():
        for extension, render in RENDERERS.items():
            path = out_dir / f"{name}.{extension}"
            path.write_text(render(table), encoding="utf-8")
            written.append(path)
    return written


def write_reports(records: list[dict], out_dir: Path, model: str, task: str = DEFAULTS["task"]) -> list[Path]:
    return write_tables(build_tables(records, model, task), out_dir)


def load_records(source: str) -> list[dict]:
    """From a local results folder, or from a W&B project (wandb:<entity>/<project>)."""
    if source.startswith(WANDB_SOURCE):
        import wandb  # imported here: slow, and unused for local records

        return with_added_options(read_wandb_records(wandb.Api(), source.removeprefix(WANDB_SOURCE)))
    return with_added_options(read_records(source))


def parse_arguments(argv: list[str]) -> dict:
    if any(argument in ("-h", "--help") for argument in argv):
        print(__doc__)
        raise SystemExit(0)
    args = dict(DEFAULTS)
    for argument in argv:
        key, _, value = argument.partition("=")
        if key not in args:
            print(f"error: unknown argument '{key}'; valid: {', '.join(args)}.", file=sys.stderr)
            raise SystemExit(2)
        args[key] = value
    if args["wandb"] not in WANDB_MODES:
        print(f"error: unknown wandb mode '{args['wandb']}'; valid: {', '.join(WANDB_MODES)}.", file=sys.stderr)
        raise SystemExit(2)
    return args


def found_text(records: list[dict], source: str) -> str:
    statuses = {}
    for record in records:
        statuses[record.get("status")] = statuses.get(record.get("status"), 0) + 1
    counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items(), key=lambda item: str(item[0])))
    return f"found {len(records)} record(s) under {source}" + (f": {counts}" if counts else "")


def check_plot_choice(args: dict, records: list[dict], source: str) -> None:
    """`model` and `task` (what the plots and the methods table are of) name a config or a run under `source`:
    else one sentence, exit 2. A known one without ok runs there only gets no plots, and says so."""
    from peftbench import CONF_DIR

    ok = [record for record in records if record.get("status") == "ok"]
    for key in ("model", "task"):
        ran = sorted({record["run"][key] for record in ok if record.get("run", {}).get(key)})
        if args[key] in ran:
            continue
        known = sorted({path.stem for path in (CONF_DIR / key).glob("*.yaml")} | set(ran))
        if args[key] not in known:
            print(
                f"error: {key}={args[key]!r} is neither a {key} config nor a {key} of the runs under {source}; "
                f"valid: {', '.join(known)}.",
                file=sys.stderr,
            )
            raise SystemExit(2)
        print(
            f"no ok run of {key}={args[key]} under {source}: no plots or methods table ({key}s run there: "
            f"{', '.join(ran)}).",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    source = args["results_dir"]
    if not source.startswith(WANDB_SOURCE) and not Path(source).is_dir():
        print(
            f"error: results_dir '{source}' is not a folder; give the folder the runs wrote their records to "
            f"(results_dir=results by default).",
            file=sys.stderr,
        )
        raise SystemExit(2)
    records = load_records(source)
    print(found_text(records, source), file=sys.stderr)
    if not any(record.get("status") == "ok" for record in records):
        print(f"error: no ok records under {source}: there is nothing to report yet.", file=sys.stderr)
        raise SystemExit(2)
    check_plot_choice(args, records, source)
    out_dir = Path(args["out_dir"])
    tables = build_tables(records, args["model"], args["task"])
    written = write_tables(tables, out_dir)
    plots = write_plots(records, out_dir, args["model"], args["task"])
    from_wandb = args["results_dir"].startswith(WANDB_SOURCE)
    links = {} if from_wandb else record_links(Path(args["results_dir"]), out_dir)
    explorer = write_explorer(records, out_dir, links)
    index = write_index(out_dir if from_wandb else Path(args["results_dir"]), written + plots, explorer)
    for path in [*written, *plots, explorer, index]:
        print(path)
    if args["wandb"] != "none":
        run_dir = log_report(
            tables,
            plots,
            args["wandb_project"],
            args["wandb"],
            config={"model": args["model"], "task": args["task"], "source": args["results_dir"]},
        )
        print(run_dir)


if __name__ == "__main__":
    main()
