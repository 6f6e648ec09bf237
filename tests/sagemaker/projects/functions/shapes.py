"""A user's module: plain functions that the pipeline turns into SageMaker @step functions."""

from __future__ import annotations

import random


def make_points(count: int, seed: int, label: str) -> dict:
    """Noisy points on the line y = 3x + 1, with the run's label."""
    rng = random.Random(seed)
    xs = [i / count for i in range(count)]
    return {"label": label, "xs": xs, "ys": [3 * x + 1 + rng.gauss(0, 0.05) for x in xs]}


def fit_line(points: dict, scale: float) -> tuple:
    """Least-squares slope and intercept (times ``scale``), and the points' label."""
    xs, ys = points["xs"], points["ys"]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return (round(slope * scale, 6), round((my - slope * mx) * scale, 6), points["label"])
