"""Pick a hyper-parameter from held-out runs, then give the command of the final run on dev:

    python -m peftbench.choose trainer.lr [results_dir] [task]

Among `ok` records evaluated on held-out training data (task.heldout_fraction), groups runs by
method, task, model and the chosen key, averages the task's main metric over seeds, and prints the
best value per method with the command that evaluates it on dev. Dev never takes part in the choice."""

import statistics
import sys
from collections import defaultdict
from pathlib import Path

from peftbench.cli import fail
from peftbench.metrics import METRICS
from peftbench.records import read_records


def lookup(config: dict, dotted: str):
    for part in dotted.split("."):
        config = config[part]
    return config


def choose(records: list[dict], key: str) -> list[dict]:
    scores = defaultdict(list)
    for record in records:
        if record["status"] != "ok" or not record["config"]["task"].get("heldout_fraction"):
            continue
        run, metric = record["run"], record["metrics"]["main_metric"]
        value = lookup(record["config"], key)
        scores[(run["method"], run["task"], run["model"], metric, value)].append(record["metrics"]["final"][metric])
    best = {}
    for (method, task, model, metric, value), values in sorted(scores.items(), key=str):
        mean = statistics.mean(values)
        group = (method, task, model)
        better = METRICS[metric].higher_is_better
        if group not in best or (mean > best[group]["heldout_mean"] if better else mean < best[group]["heldout_mean"]):
            best[group] = {
                "method": method,
                "task": task,
                "model": model,
                "metric": metric,
                "key": key,
                "value": value,
                "heldout_mean": mean,
                "seeds": len(values),
                "command": f"python -m peftbench +method={method} +task={task} model={model} {key}={value}",
            }
    return list(best.values())


def main() -> None:
    if any(argument in ("-h", "--help") for argument in sys.argv[1:]):
        print(__doc__)
        raise SystemExit(0)
    if len(sys.argv) < 2:
        print("usage: python -m peftbench.choose <config key, e.g. trainer.lr> [results_dir] [task]", file=sys.stderr)
        raise SystemExit(2)
    key, results_dir = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "results"
    task = sys.argv[3] if len(sys.argv) > 3 else None
    if "=" in key:
        fail(
            f"'{key}' is not a config key: the arguments are positional, "
            "<config key, e.g. trainer.lr> [results_dir] [task]."
        )
    if not Path(results_dir).is_dir():
        fail(
            f"results_dir '{results_dir}' is not a folder; give the folder the runs wrote their records to "
            "(results by default)."
        )
    try:
        chosen = [c for c in choose(read_records(results_dir), key) if task in (None, c["task"])]
    except (KeyError, TypeError):
        fail(
            f"a held-out record under {results_dir} has no config key '{key}'; "
            "name one such as trainer.lr or method.r."
        )
    if not chosen:
        print(
            f"No ok records with task.heldout_fraction set under {results_dir}; run sweeps/lr_search.yaml first.",
            file=sys.stderr,
        )
        raise SystemExit(1)
    for c in chosen:
        print(
            f"{c['method']} on {c['task']} ({c['model']}): {key}={c['value']} "
            f"(held-out {c['metric']} {c['heldout_mean']:.4f} over {c['seeds']} seed(s))\n"
            f"  final run on dev: {c['command']}"
        )


if __name__ == "__main__":
    main()
