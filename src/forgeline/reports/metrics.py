"""Report metrics with scikit-learn: per model, per segment, and the candidate-minus-baseline bootstrap interval."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics as skm

from forgeline.reports.inputs import LabelledScores
from forgeline.reports.resampling import binary_metrics, regression_metrics

BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 17
PRIMARY = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}
"""The metric shown per segment."""

MetricFunction = Callable[[np.ndarray, np.ndarray, float], float]


def _binary(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    decided = (p >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, p)) if both else float("nan"),
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, p)),
        "accuracy": float(skm.accuracy_score(y, decided)),
        "f1": float(skm.f1_score(y, decided, zero_division=0)),
        "precision": float(skm.precision_score(y, decided, zero_division=0)),
        "recall": float(skm.recall_score(y, decided, zero_division=0)),
    }


def _multiclass(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    labels = list(range(p.shape[1]))
    decided = p.argmax(axis=1)
    p = p / np.clip(p.sum(axis=1, keepdims=True), 1e-12, None)  # rounded probabilities sum to one again
    try:
        auc = float(skm.roc_auc_score(y, p, multi_class="ovr", labels=labels))
    except ValueError:  # a class absent from this sample
        auc = float("nan")
    return {
        "auc": auc,
        "log_loss": float(skm.log_loss(y, p, labels=labels)),
        "accuracy": float(skm.accuracy_score(y, decided)),
        "f1": float(skm.f1_score(y, decided, average="macro", labels=labels, zero_division=0)),
    }


def _regression(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, p))),
        "mae": float(skm.mean_absolute_error(y, p)),
        "r2": float(skm.r2_score(y, p)) if len(y) > 1 else float("nan"),
    }


TASK_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, float], dict[str, float]]] = {
    "binary": _binary, "multiclass": _multiclass, "regression": _regression,
}


RESAMPLED_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, float], dict[str, float]]] = {
    "binary": binary_metrics, "multiclass": _multiclass, "regression": regression_metrics,
}
"""What each resample computes (the same values, without scikit-learn's per-call checks where it matters)."""


def model_metrics(task: str, labels: ArrayLike, scores: ArrayLike, threshold: float) -> dict[str, float]:
    """Every metric of one model's scores against the labels."""
    y, p = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    return TASK_METRICS[task](y, p, threshold)


def bootstrap_difference(data: LabelledScores, threshold: float, resamples: int = BOOTSTRAP_RESAMPLES,
                         seed: int = BOOTSTRAP_SEED) -> dict[str, dict[str, float]]:
    """Candidate minus baseline per metric, with a 95 % percentile interval over resampled rows."""
    assert data.baseline is not None
    y, c, b = np.asarray(data.labels), np.asarray(data.candidate, float), np.asarray(data.baseline, float)
    point_c, point_b = model_metrics(data.task, y, c, threshold), model_metrics(data.task, y, b, threshold)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {name: [] for name in point_c}
    for _ in range(resamples):
        rows = rng.integers(0, len(y), len(y))
        with np.errstate(all="ignore"):
            mc = RESAMPLED_METRICS[data.task](y[rows], c[rows], threshold)
            mb = RESAMPLED_METRICS[data.task](y[rows], b[rows], threshold)
        for name in samples:
            difference = mc[name] - mb[name]
            if np.isfinite(difference):
                samples[name].append(difference)
    result = {}
    for name in point_c:
        values = samples[name]
        low, high = (np.percentile(values, [2.5, 97.5]) if values else (float("nan"), float("nan")))
        result[name] = {"value": point_c[name] - point_b[name], "low": float(low), "high": float(high)}
    return result


def by_segment(data: LabelledScores, threshold: float) -> dict[str, dict[str, Any]]:
    """The primary metric of each model per segment value, with the segment's row count."""
    if data.segments is None:
        return {}
    primary = PRIMARY[data.task]
    y, segments = np.asarray(data.labels), np.asarray(data.segments)
    found: dict[str, dict[str, Any]] = {}
    for value in sorted(set(data.segments)):
        rows = segments == value
        entry: dict[str, Any] = {"rows": int(rows.sum()), "metric": primary}
        with np.errstate(all="ignore"):
            entry["candidate"] = model_metrics(data.task, y[rows], np.asarray(data.candidate)[rows],
                                               threshold)[primary]
            if data.baseline is not None:
                entry["baseline"] = model_metrics(data.task, y[rows], np.asarray(data.baseline)[rows],
                                                  threshold)[primary]
        found[value] = entry
    return found


def label_distribution(data: LabelledScores) -> dict[str, Any]:
    """Rows per class, or the label's mean, spread and range for regression."""
    if data.task == "regression":
        y = np.asarray(data.labels, float)
        return {"mean": float(y.mean()), "std": float(y.std()), "min": float(y.min()), "max": float(y.max())}
    counts = Counter(data.labels)
    return {cls: int(counts.get(i, 0)) for i, cls in enumerate(data.classes)}


def report_metrics(data: LabelledScores, threshold: float = 0.5) -> dict[str, Any]:
    """What a report's step exposes: candidate, baseline, difference (with interval), size, labels, segments."""
    metrics: dict[str, Any] = {
        "task": data.task,
        "rows": len(data.labels),
        "threshold": threshold,
        "label_distribution": label_distribution(data),
        "candidate": model_metrics(data.task, data.labels, data.candidate, threshold),
        "baseline": None,
        "difference": None,
    }
    if data.baseline is not None:
        metrics["baseline"] = model_metrics(data.task, data.labels, data.baseline, threshold)
        metrics["difference"] = bootstrap_difference(data, threshold)
    metrics["segments"] = by_segment(data, threshold)
    finite: dict[str, Any] = _finite(metrics)
    return finite


def _finite(value: Any) -> Any:
    """NaN (a metric undefined on this data, e.g. AUC with one class) becomes None, which JSON can hold."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value
