"""Score model/model.joblib on test/test.csv and write evaluation/evaluation.json."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.metrics import accuracy_score, f1_score

LABEL = "target"


def load_xy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features are every column but `target`, in file order, as fit.py saw them."""
    if not path.is_file():
        sys.exit(f"evaluate: {path} not found; the test split must be staged at test/")
    with path.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    if LABEL not in header:
        sys.exit(f"evaluate: {path} has no '{LABEL}' column")
    table = np.asarray(rows, dtype=float)
    label = header.index(LABEL)
    return np.delete(table, label, axis=1), table[:, label].astype(int)


def main() -> None:
    model_path = Path("model/model.joblib")
    if not model_path.is_file():
        sys.exit(f"evaluate: {model_path} not found; the fitted model must be staged at model/")
    model = joblib.load(model_path)
    features, labels = load_xy(Path("test/test.csv"))
    if features.shape[1] != model.n_features_in_:
        sys.exit(
            f"evaluate: the model expects {model.n_features_in_} features, test.csv has {features.shape[1]}"
        )
    predicted = model.predict(features)
    report = {
        "metrics": {
            "accuracy": {"value": float(accuracy_score(labels, predicted))},
            "f1": {"value": float(f1_score(labels, predicted))},
        }
    }
    Path("evaluation").mkdir(exist_ok=True)
    Path("evaluation/evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
