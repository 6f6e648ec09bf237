"""Fit a standardised logistic regression on train/train.csv and save it as model/model.joblib."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

LABEL = "target"


def load_xy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features are every column but `target`, in file order; the model relies on that same order later."""
    if not path.is_file():
        sys.exit(f"fit: {path} not found; the training split must be staged at train/")
    with path.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    if LABEL not in header:
        sys.exit(f"fit: {path} has no '{LABEL}' column")
    table = np.asarray(rows, dtype=float)
    label = header.index(LABEL)
    return np.delete(table, label, axis=1), table[:, label].astype(int)


def main() -> None:
    features, labels = load_xy(Path("train/train.csv"))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(features, labels)
    Path("model").mkdir(exist_ok=True)
    joblib.dump(model, "model/model.joblib")
    print(f"trained on {len(labels)} rows; training accuracy {model.score(features, labels):.4f}")


if __name__ == "__main__":
    main()
