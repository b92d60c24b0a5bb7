"""The short table printed at the end of a run. Light: rich only, no plotting or table libraries."""

from rich.console import Console
from rich.table import Table

MIB = 2**20
BREAKDOWN_PARTS = ("weights_bytes", "gradients_bytes", "optimizer_state_bytes", "activations_bytes", "other_bytes")


def print_run_summary(record: dict) -> None:
    run, metrics, params = record["run"], record["metrics"], record["params"]
    memory, throughput, latency, timing = record["memory"], record["throughput"], record["latency"], record["time"]
    table = Table(title=f"{run['method']} on {run['task']} ({run['model']}, seed {run['seed']})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for name, value in metrics["final"].items():
        table.add_row(f"{name} (final)", f"{value:.4f}")
    for name, value in metrics["best"].items():
        table.add_row(f"{name} (best, epoch {metrics['best_epoch']})", f"{value:.4f}")
    table.add_row("trainable parameters", f"{params['trainable']:,} ({100 * params['trainable_share']:.3f}%)")
    table.add_row("  added / unfrozen / head", f"{params['added']:,} / {params['unfrozen']:,} / {params['head']:,}")
    table.add_row("total parameters", f"{params['total']:,}")
    table.add_row(f"peak train memory ({memory['kind']})", f"{memory['peak_train_bytes'] / MIB:,.1f} MiB")
    parts = " / ".join(f"{(memory['breakdown'][part] or 0) / MIB:,.1f}" for part in BREAKDOWN_PARTS)
    table.add_row("  weights / grads / optimizer / activations / other", f"{parts} MiB")
    rates = f"{throughput['samples_per_second']:.1f} samples/s, {throughput['tokens_per_second']:,.0f} tokens/s"
    table.add_row("median step time", f"{1000 * throughput['median_step_seconds']:.1f} ms ({rates})")
    base, with_method, merged = latency["base"], latency["method"], latency["merged"]
    shape = f"batch {latency['batch_size']} x {latency['seq_length']}"
    table.add_row(f"latency base ({shape})", f"{base['median_ms']:.2f} ms (p90 {base['p90_ms']:.2f})")
    table.add_row("latency with method", f"{with_method['median_ms']:.2f} ms ({with_method['overhead_pct']:+.1f}%)")
    if merged:
        table.add_row(
            "latency merged",
            f"{merged['median_ms']:.2f} ms ({merged['overhead_pct']:+.1f}%)"
            f", max diff {latency['merge_check']['max_abs_diff']:.1e}",
        )
    table.add_row("checkpoint", f"{record['checkpoint']['bytes'] / MIB:,.3f} MiB")
    table.add_row("train time", f"{timing['train_seconds']:.1f} s over {timing['train_steps']} steps")
    table.add_row("wall time", f"{timing['wall_seconds']:.1f} s")
    if timing.get("phases"):  # where the wall time went; evaluation is inside train_and_evaluate
        parts = [f"{name} {seconds:.1f}" for name, seconds in timing["phases"].items()]
        table.add_row("phases (s)", ", ".join(parts) + f"; of which evaluation {timing['eval_seconds']:.1f}")
    console = Console(stderr=True)
    console.print(table)
    console.print(f"record: {record['path']}")
