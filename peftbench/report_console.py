"""The short table printed at the end of a run."""

from rich.console import Console
from rich.table import Table


def print_run_summary(record: dict) -> None:
    run, metrics, params, timing = record["run"], record["metrics"], record["params"], record["time"]
    table = Table(title=f"{run['method']} on {run['task']} ({run['model']}, seed {run['seed']})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for name, value in metrics["final"].items():
        table.add_row(f"{name} (final)", f"{value:.4f}")
    for name, value in metrics["best"].items():
        table.add_row(f"{name} (best, epoch {metrics['best_epoch']})", f"{value:.4f}")
    table.add_row("trainable parameters", f"{params['trainable']:,} ({100 * params['trainable_share']:.3f}%)")
    table.add_row("total parameters", f"{params['total']:,}")
    table.add_row("train time", f"{timing['train_seconds']:.1f} s over {timing['train_steps']} steps")
    table.add_row("wall time", f"{timing['wall_seconds']:.1f} s")
    Console(stderr=True).print(table)
    Console(stderr=True).print(f"record: {record['path']}")
