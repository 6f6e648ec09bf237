"""Metrics of two package versions side by side, with the difference of every numeric metric."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard


@dataclass(frozen=True)
class MetricDifference:
    """One metric in two versions; difference is ``b - a`` when both are numbers, else None."""

    name: str
    a: Any
    b: Any
    difference: float | None


@dataclass(frozen=True)
class MetricsComparison:
    """Every metric of versions ``a`` and ``b`` of a group, by dotted name."""

    group: str
    a: int
    b: int
    metrics: list[MetricDifference]


def flatten_metrics(report: Any, prefix: str = "") -> dict[str, Any]:
    """A metrics report as ``{"metrics.accuracy.value": 0.95, ...}``; lists and scalars are leaves."""
    if not isinstance(report, Mapping):
        return {} if report is None and not prefix else {prefix or "value": report}
    flat: dict[str, Any] = {}
    for key, value in report.items():
        flat.update(flatten_metrics(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare_metrics(group: str, a: int, metrics_a: Any, b: int, metrics_b: Any) -> MetricsComparison:
    """Pair up the metrics of two reports (a metric missing from one shows as None)."""
    flat_a, flat_b = flatten_metrics(metrics_a), flatten_metrics(metrics_b)
    names = list(flat_a) + [name for name in flat_b if name not in flat_a]
    rows = []
    for name in names:
        value_a, value_b = flat_a.get(name), flat_b.get(name)
        difference = float(value_b - value_a) if _is_number(value_a) and _is_number(value_b) else None
        rows.append(MetricDifference(name, value_a, value_b, difference))
    return MetricsComparison(group, a, b, rows)
