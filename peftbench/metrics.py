"""Task metrics: GLUE's, computed with scikit-learn and scipy, and generation metrics over texts
(`text_metrics`: sacrebleu, NLTK, rouge-score); none needs the hub."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from peftbench import text_metrics


@dataclass(frozen=True)
class Metric:
    compute: Callable[[np.ndarray, np.ndarray], float]  # (predictions, labels) -> value
    higher_is_better: bool  # declared once; fields.py lists it with the other record fields reports read
    on_text: bool = False  # (generated texts, their references) instead of arrays of labels
    # why it cannot be computed on this machine (a callable returning a reason, or None when it can)
    unavailable: Callable[[], str | None] = lambda: None


ROUGE_MISSING = text_metrics.missing("rouge_score", "nltk")  # rouge-score stems with NLTK's Porter stemmer

METRICS: dict[str, Metric] = {
    "accuracy": Metric(lambda p, y: skm.accuracy_score(y, p), True),
    "f1": Metric(lambda p, y: skm.f1_score(y, p), True),  # F1 of the positive class (MRPC, QQP)
    "macro_f1": Metric(lambda p, y: skm.f1_score(y, p, average="macro"), True),  # CB
    "matthews_corr": Metric(lambda p, y: skm.matthews_corrcoef(y, p), True),  # CoLA
    "pearson": Metric(lambda p, y: stats.pearsonr(p, y)[0], True),  # STS-B
    "spearman": Metric(lambda p, y: stats.spearmanr(p, y)[0], True),
    "bleu": Metric(text_metrics.bleu, True, on_text=True, unavailable=text_metrics.missing("sacrebleu")),
    "nist": Metric(text_metrics.nist, True, on_text=True, unavailable=text_metrics.missing("sacrebleu", "nltk")),
    "meteor": Metric(text_metrics.meteor, True, on_text=True, unavailable=text_metrics.wordnet_missing),
    "rouge1": Metric(text_metrics.rouge("rouge1"), True, on_text=True, unavailable=ROUGE_MISSING),
    "rouge2": Metric(text_metrics.rouge("rouge2"), True, on_text=True, unavailable=ROUGE_MISSING),
    "rouge_l": Metric(text_metrics.rouge("rougeL"), True, on_text=True, unavailable=ROUGE_MISSING),
    "cider": Metric(text_metrics.cider_d, True, on_text=True, unavailable=text_metrics.missing("sacrebleu")),
}


def compute_metrics(names, predictions, labels) -> dict[str, float]:
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {', '.join(unknown)}; valid: {', '.join(METRICS)}.")
    values = {}
    for name in names:
        metric = METRICS[name]
        if metric.unavailable() is None:
            values[name] = float(
                metric.compute(predictions, labels)
                if metric.on_text
                else metric.compute(np.asarray(predictions), np.asarray(labels))
            )
    return values


def unavailable_metrics(names) -> dict[str, str]:
    """The task's metrics this machine cannot compute, with the reason (the record keeps it; no value is invented)."""
    return {name: reason for name in names if (reason := METRICS[name].unavailable()) is not None}


def is_better(name: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value > best if METRICS[name].higher_is_better else value < best
