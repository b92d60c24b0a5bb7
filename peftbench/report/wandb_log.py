"""Reports and Weights & Biases: log the built tables and plots to one run, and read run records back
from a W&B project (what `peftbench.tracking` sent: the resolved config, and the record's values
flattened into the summary)."""

from pathlib import Path

from peftbench.report.plots import describe
from peftbench.report.render import grid
from peftbench.tracking import SUMMARY_SECTIONS, wandb_mode

WANDB_SOURCE = "wandb:"  # results_dir=wandb:<entity>/<project> reads records from W&B


def log_report(tables: dict, plot_paths: list[Path], project: str, mode: str, config: dict | None = None) -> Path:
    """One run (job_type "report"): each built table as a wandb.Table with the rendered grid's header,
    each PNG as a wandb.Image. mode: offline | online | auto. Returns the run's local directory."""
    import wandb  # imported here: slow, and unused without W&B

    run = wandb.init(
        project=project,
        job_type="report",
        mode=wandb_mode(mode),
        config=config or {},
        settings=wandb.Settings(x_disable_stats=True, console="off"),
        reinit="finish_previous",
    )
    try:
        logged = {}
        for name, table in sorted(tables.items()):
            rows = grid(table, lambda text: text)
            logged[f"tables/{name}"] = wandb.Table(columns=rows[0], data=rows[1:])
        for path in sorted(Path(p) for p in plot_paths if Path(p).suffix == ".png"):
            logged[f"plots/{path.stem}"] = wandb.Image(str(path), caption=describe(path.stem))
        run.log(logged)
    finally:
        run.finish()
    return Path(run.settings.sync_dir)


def unflatten(flat: dict) -> dict:
    """{"latency/method/median_ms": 3.1} -> {"latency": {"method": {"median_ms": 3.1}}}"""
    nested = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        level = nested
        for part in parents:
            level = level.setdefault(part, {})
        level[leaf] = value
    return nested


def budget_of(config: dict, params: dict) -> dict | None:
    """The record's budget section, rebuilt: the achieved count is the run's trainable count (budget.py)."""
    budget = config.get("budget") or {}
    if budget.get("params") is None and budget.get("share") is None:
        return None
    from peftbench.methods import METHODS  # the registry brings torch and peft: only a W&B read needs it

    method = config["method"]["name"]
    knob = METHODS[method].size_knob if method in METHODS else None
    return {
        "name": budget.get("name"),
        "target_params": budget.get("params"),
        "target_share": budget.get("share"),
        "knob": knob,
        "value": config["method"].get(knob) if knob else None,
        "achieved_params": params.get("trainable"),
        "achieved_share": params.get("trainable_share"),
    }


def group_name(config: dict, group: str) -> str | None:
    section = config.get(group)
    return section.get("name") if isinstance(section, dict) else None


def record_from_run(run) -> dict | None:
    """A record from a W&B run of the recipe; None for runs that are not (a report run, say)."""
    config = dict(run.config)
    names = [group_name(config, group) for group in ("method", "task", "model")]
    if None in names:
        return None
    method, task, model = names
    summary = {k: v for k, v in dict(run.summary_metrics).items() if not k.startswith("_")}
    family = summary.get("method_family")  # the family the run recorded
    if family is None:  # runs logged before the summary kept it
        from peftbench.methods import METHODS

        family = METHODS[method].family if method in METHODS else None
    sections = unflatten({k: v for k, v in summary.items() if k.split("/", 1)[0] in SUMMARY_SECTIONS})
    state = {"finished": "ok", "running": "running"}.get(run.state, "failed")
    return {
        "status": state,
        "run": {
            "id": run.name,
            "task": task,
            "model": model,
            "method": method,
            "method_family": family,
            "seed": config.get("seed"),
            "config_hash": summary.get("config_hash"),
            "wandb_path": "/".join(run.path),
        },
        "config": config,
        "metrics": {
            "main_metric": config["task"].get("main_metric"),
            "final": {k.split("/", 1)[1]: v for k, v in summary.items() if k.startswith("final/")},
            "best": {k.split("/", 1)[1]: v for k, v in summary.items() if k.startswith("best/")},
        },
        **sections,
        "budget": budget_of(config, sections.get("params", {})),
    }


def read_wandb_records(api, project_path: str) -> list[dict]:
    """Records of the runs in <entity>/<project>, through a wandb.Api() (or anything with its `runs`)."""
    found = (record_from_run(run) for run in api.runs(project_path))
    records = [r for r in found if r is not None]
    return sorted(
        records,
        key=lambda r: (r["run"]["task"], r["run"]["model"], r["run"]["method"], str(r["run"]["seed"]), r["run"]["id"]),
    )
