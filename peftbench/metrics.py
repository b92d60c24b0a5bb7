"""Task metrics as GLUE defines them, computed with scikit-learn and scipy (no hub)."""

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats
from sklearn import metrics as skm


@dataclass(frozen=True)
class Metric:
    compute: Callable[[np.ndarray, np.ndarray], float]  # (predictions, labels) -> value
    higher_is_better: bool  # declared once; tables and Pareto plots read it from here


METRICS: dict[str, Metric] = {
    "accuracy": Metric(lambda p, y: skm.accuracy_score(y, p), True),
    "f1": Metric(lambda p, y: skm.f1_score(y, p), True),  # F1 of the positive class (MRPC, QQP)
    "macro_f1": Metric(lambda p, y: skm.f1_score(y, p, average="macro"), True),  # CB
    "matthews_corr": Metric(lambda p, y: skm.matthews_corrcoef(y, p), True),  # CoLA
    "pearson": Metric(lambda p, y: stats.pearsonr(p, y)[0], True),  # STS-B
    "spearman": Metric(lambda p, y: stats.spearmanr(p, y)[0], True),
}


def compute_metrics(names, predictions, labels) -> dict[str, float]:
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {', '.join(unknown)}; valid: {', '.join(METRICS)}.")
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return {name: float(METRICS[name].compute(predictions, labels)) for name in names}


def is_better(name: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value > best if METRICS[name].higher_is_better else value < best
