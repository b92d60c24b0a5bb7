"""Every measured field of a record that reports read, declared once: where it is in the record, what it is,
the unit reports show it in and which way is better. Tables, plots and the table specs read them from here;
a metric's direction is its own declaration in `metrics.METRICS`."""

from dataclasses import dataclass

from peftbench.metrics import METRICS


@dataclass(frozen=True)
class Field:
    path: str  # dotted path into a record
    label: str  # what it is, without its unit
    unit: str  # as reports show it; "" for a count or a score
    higher_is_better: bool | None  # None: neither is better
    scale: float = 1.0  # record value x scale = the value in `unit`


MEASURED = (
    Field("params.trainable", "Trainable parameters", "", False),
    Field("params.trainable_share", "Trainable parameters", "% of total", False, 100.0),
    Field("params.stored_share", "Stored parameters", "% of total", False, 100.0),
    Field("memory.peak_train_bytes", "Peak training memory", "MiB", False, 2.0**-20),
    Field("throughput.samples_per_second", "Training throughput", "samples/s", True),
    Field("throughput.median_step_seconds", "Median training step time", "s", False),
    Field("latency.method.median_ms", "Inference latency with the method", "ms", False),
    Field("latency.method.overhead_pct", "Inference overhead of the method, unmerged", "% of the base model", False),
    Field("latency.merged.overhead_pct", "Inference overhead of the method, merged", "% of the base model", False),
    Field("checkpoint.bytes", "Checkpoint size", "MB", False, 1e-6),
    Field("budget.achieved_params", "Achieved trainable parameters", "", False),
    Field("metrics.forgetting.increase", "General-text loss increase after tuning", "nats/token", False),
)

FINAL_METRICS = tuple(
    Field(f"metrics.final.{name}", name, "", metric.higher_is_better) for name, metric in METRICS.items()
)

FIELDS: dict[str, Field] = {f.path: f for f in MEASURED + FINAL_METRICS}


def record_field(path: str) -> Field:
    if path not in FIELDS:
        raise KeyError(f"Unknown record field '{path}'; declared fields: {', '.join(FIELDS)}.")
    return FIELDS[path]


def final_metric(name: str) -> Field:
    """The field of a task metric's final-epoch value ("accuracy" -> metrics.final.accuracy)."""
    return record_field(f"metrics.final.{name}")


def metric_of(path: str) -> str | None:
    """The metric a path holds the final value of ("metrics.final.accuracy" -> "accuracy"); None for a cost."""
    prefix, _, name = path.rpartition(".")
    return name if prefix == "metrics.final" else None
