"""Task metrics: GLUE's, computed with scikit-learn and scipy, and generation metrics over texts
(`text_metrics`: sacrebleu, NLTK, rouge-score); none needs the hub."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from peftbench import text_metrics


@dataclass(frozen=True)
class Metric:
    compute: Callable[[np.ndarray, np.ndarray], float]  # (predictions, labels) -> value
    higher_is_better: bool  # declared once; fields.py lists it with the other record fields reports read
    on_text: bool = False  # (generated texts, their references) instead of arrays of labels
    # why it cannot be computed on this machine (a callable returning a reason, or None when it can)
    unavailable: Callable[[], str | None] = lambda: None


def scikit_learn(function: str, **options) -> Callable[[np.ndarray, np.ndarray], float]:
    """scikit-learn's metric `function`(labels, predictions), imported at the first call: reading records
    (the report) does not pay for the import."""

    def compute(predictions, labels):
        from sklearn import metrics

        return getattr(metrics, function)(labels, predictions, **options)

    return compute


ROUGE_MISSING = text_metrics.missing("rouge_score", "nltk")  # rouge-score stems with NLTK's Porter stemmer

METRICS: dict[str, Metric] = {
    "accuracy": Metric(scikit_learn("accuracy_score"), True),
    "f1": Metric(scikit_learn("f1_score"), True),  # F1 of the positive class (MRPC, QQP)
    "macro_f1": Metric(scikit_learn("f1_score", average="macro"), True),  # CB
    "matthews_corr": Metric(scikit_learn("matthews_corrcoef"), True),  # CoLA
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


def resampled(name: str, predictions: np.ndarray, labels: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """The metric on each bootstrap resample of the examples (`samples`: resamples x drawn example indices).
    Accuracy, F1 and Matthews' correlation come from each resample's confusion counts at once, as their
    definitions (and scikit-learn) compute them; other metrics are computed once per resample."""
    resamples, n = samples.shape
    integers = predictions.dtype.kind in "iub" and labels.dtype.kind in "iub"
    classes = int(max(predictions.max(), labels.max())) + 1 if integers else 0
    from_counts = name in ("accuracy", "matthews_corr", "f1") and (name == "accuracy" or integers)
    if not from_counts or (name == "f1" and classes != 2):  # F1 of the positive class needs two classes
        compute = METRICS[name].compute
        return np.array([compute(predictions[sample], labels[sample]) for sample in samples])
    offsets = samples + n * np.arange(resamples)[:, None]  # how often each resample draws each example
    draws = np.bincount(offsets.ravel(), minlength=resamples * n).reshape(resamples, n).astype(float)
    if name == "accuracy":
        return draws @ (predictions == labels) / n
    cells = np.zeros((n, classes * classes))
    cells[np.arange(n), labels * classes + predictions] = 1
    confusion = (draws @ cells).reshape(-1, classes, classes)  # [resample, true, predicted]
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "f1":  # of the positive class; 0 when it is never predicted nor true
            tp, fp, fn = confusion[:, 1, 1], confusion[:, 0, 1], confusion[:, 1, 0]
            return np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        true, predicted = confusion.sum(2), confusion.sum(1)
        total, correct = confusion.sum((1, 2)), np.trace(confusion, axis1=1, axis2=2)  # Matthews' correlation
        covariance = correct * total - (true * predicted).sum(1)
        spread = (total * total - (predicted * predicted).sum(1)) * (total * total - (true * true).sum(1))
        return np.where(spread > 0, covariance / np.sqrt(spread), 0.0)


def unavailable_metrics(names) -> dict[str, str]:
    """The task's metrics this machine cannot compute, with the reason (the record keeps it; no value is invented)."""
    return {name: reason for name in names if (reason := METRICS[name].unavailable()) is not None}


def is_better(name: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value > best if METRICS[name].higher_is_better else value < best
