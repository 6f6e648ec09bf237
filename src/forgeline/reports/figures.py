"""The report's figures with matplotlib (Agg, no display): curves, calibration, confusion, distributions, segments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: never a display, in a job or a headless server

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn import metrics as skm  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402

from forgeline.reports.inputs import LabelledScores  # noqa: E402

COLOURS = {"candidate": "#1f77b4", "baseline": "#ff7f0e"}


@dataclass(frozen=True)
class ReportFigure:
    """One titled figure of the report."""

    title: str
    figure: Figure


def _models(data: LabelledScores) -> list[tuple[str, np.ndarray]]:
    found = [("candidate", np.asarray(data.candidate, float))]
    if data.baseline is not None:
        found.append(("baseline", np.asarray(data.baseline, float)))
    return found


def _figure(width: float = 6.4, height: float = 4.8) -> tuple[Figure, Any]:
    figure = plt.figure(figsize=(width, height))
    return figure, figure.add_subplot()


def roc_curves(data: LabelledScores) -> Figure:
    """ROC curves of both models overlaid."""
    figure, axes = _figure()
    for name, scores in _models(data):
        fpr, tpr, _ = skm.roc_curve(data.labels, scores)
        axes.plot(fpr, tpr, color=COLOURS[name], label=f"{name} (AUC {skm.auc(fpr, tpr):.3f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    axes.legend(loc="lower right")
    return figure


def precision_recall_curves(data: LabelledScores) -> Figure:
    """Precision-recall curves of both models overlaid."""
    figure, axes = _figure()
    for name, scores in _models(data):
        precision, recall, _ = skm.precision_recall_curve(data.labels, scores)
        ap = skm.average_precision_score(data.labels, scores)
        axes.plot(recall, precision, color=COLOURS[name], label=f"{name} (AP {ap:.3f})")
    axes.axhline(float(np.mean(data.labels)), color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall curve")
    axes.legend(loc="upper right")
    return figure


def calibration(data: LabelledScores) -> Figure:
    """Observed frequency against mean predicted probability, per model."""
    figure, axes = _figure()
    for name, scores in _models(data):
        observed, predicted = calibration_curve(data.labels, scores, n_bins=10, strategy="quantile")
        axes.plot(predicted, observed, marker="o", color=COLOURS[name], label=name)
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel="mean predicted probability", ylabel="observed frequency", title="Calibration")
    axes.legend(loc="upper left")
    return figure


def _decisions(data: LabelledScores, scores: np.ndarray, threshold: float) -> np.ndarray:
    return scores.argmax(axis=1) if data.task == "multiclass" else (scores >= threshold).astype(int)


def confusion_matrices(data: LabelledScores, threshold: float) -> Figure:
    """Confusion matrices side by side (at the threshold for binary tasks)."""
    models = _models(data)
    figure = plt.figure(figsize=(5.2 * len(models), 4.6))
    labels = list(range(len(data.classes)))
    for position, (name, scores) in enumerate(models, 1):
        axes = figure.add_subplot(1, len(models), position)
        matrix = skm.confusion_matrix(data.labels, _decisions(data, scores, threshold), labels=labels)
        axes.imshow(matrix, cmap="Blues")
        for (row, column), count in np.ndenumerate(matrix):
            axes.text(column, row, str(count), ha="center", va="center",
                      color="white" if count > matrix.max() / 2 else "black")
        axes.set_xticks(labels, data.classes)
        axes.set_yticks(labels, data.classes)
        axes.set(xlabel="predicted", ylabel="actual", title=name)
    figure.suptitle("Confusion matrices" + (f" at threshold {threshold:g}" if data.task == "binary" else ""))
    return figure


def score_distributions(data: LabelledScores) -> Figure:
    """Histograms of each model's scores, one colour per actual class."""
    models = _models(data)
    figure = plt.figure(figsize=(5.2 * len(models), 4.2))
    labels = np.asarray(data.labels)
    for position, (name, scores) in enumerate(models, 1):
        axes = figure.add_subplot(1, len(models), position)
        values = scores if scores.ndim == 1 else scores.max(axis=1)
        for index, cls in enumerate(data.classes):
            axes.hist(values[labels == index], bins=30, range=(0, 1), alpha=0.55, label=f"class {cls}",
                      density=True)
        axes.set(xlabel="score" if scores.ndim == 1 else "top class probability", ylabel="density", title=name)
        axes.legend()
    figure.suptitle("Score distributions by actual class")
    return figure


def predicted_vs_actual(data: LabelledScores) -> Figure:
    """Regression: predictions against labels, per model."""
    figure, axes = _figure()
    for name, scores in _models(data):
        axes.scatter(data.labels, scores, s=6, alpha=0.5, color=COLOURS[name], label=name)
    low, high = float(np.min(data.labels)), float(np.max(data.labels))
    axes.plot([low, high], [low, high], color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
    axes.legend()
    return figure


def residuals(data: LabelledScores) -> Figure:
    """Regression: histograms of prediction errors, per model."""
    figure, axes = _figure()
    for name, scores in _models(data):
        axes.hist(scores - np.asarray(data.labels, float), bins=40, alpha=0.55, color=COLOURS[name], label=name)
    axes.set(xlabel="prediction - actual", ylabel="rows", title="Residuals")
    axes.legend()
    return figure


def segments_chart(metrics: dict[str, Any]) -> Figure:
    """The primary metric per segment, candidate and baseline side by side."""
    segments = metrics["segments"]
    names = list(segments)
    figure, axes = _figure(max(6.4, 0.6 * len(names) + 2), 4.4)
    positions = np.arange(len(names))
    models = ["candidate"] + (["baseline"] if metrics["baseline"] is not None else [])
    width = 0.8 / len(models)
    for offset, model in enumerate(models):
        values = [segments[n].get(model) or 0.0 for n in names]
        axes.bar(positions + offset * width, values, width, color=COLOURS[model], label=model)
    axes.set_xticks(positions + width * (len(models) - 1) / 2, names)
    metric = next(iter(segments.values()))["metric"] if segments else ""
    axes.set(ylabel=metric, title=f"{metric} by segment")
    axes.legend()
    return figure


def difference_chart(metrics: dict[str, Any]) -> Figure:
    """Candidate minus baseline per metric, with its 95 % bootstrap interval."""
    difference = {k: v for k, v in metrics["difference"].items() if v["value"] is not None}
    names = list(difference)
    figure, axes = _figure(6.4, 0.45 * len(names) + 1.6)
    values = np.array([difference[n]["value"] for n in names])
    low = np.array([difference[n]["low"] if difference[n]["low"] is not None else difference[n]["value"]
                    for n in names])
    high = np.array([difference[n]["high"] if difference[n]["high"] is not None else difference[n]["value"]
                     for n in names])
    axes.errorbar(values, np.arange(len(names)), xerr=[values - low, high - values], fmt="o", capsize=4)
    axes.axvline(0, color="grey", linestyle=":")
    axes.set_yticks(np.arange(len(names)), names)
    axes.set(xlabel="candidate - baseline (95 % bootstrap interval)", title="Difference")
    figure.tight_layout()
    return figure


def report_figures(data: LabelledScores, metrics: dict[str, Any]) -> list[ReportFigure]:
    """Every figure that applies to the task and inputs, in report order."""
    threshold = float(metrics["threshold"])
    makers: list[tuple[str, Callable[[], Figure]]] = []
    if data.task == "binary" and len(set(data.labels)) == 2:
        makers += [("ROC curve", lambda: roc_curves(data)),
                   ("Precision-recall curve", lambda: precision_recall_curves(data)),
                   ("Calibration", lambda: calibration(data))]
    if data.task in ("binary", "multiclass"):
        makers += [("Confusion matrices", lambda: confusion_matrices(data, threshold)),
                   ("Score distributions", lambda: score_distributions(data))]
    else:
        makers += [("Predicted vs actual", lambda: predicted_vs_actual(data)), ("Residuals", lambda: residuals(data))]
    if metrics["segments"]:
        makers.append(("By segment", lambda: segments_chart(metrics)))
    if metrics["difference"]:
        makers.append(("Difference", lambda: difference_chart(metrics)))
    return [ReportFigure(title, make()) for title, make in makers]


def close(figures: list[ReportFigure]) -> None:
    """Free the figures' memory."""
    for item in figures:
        plt.close(item.figure)
