"""Score the batch-transformed validation set against its labels: ``evaluation/evaluation.json``.

The report holds the model's scores (``metrics.<name>.value``) and what it was trained on (``data``: rows, weeks,
share shipped fine): the comparison with the approved model reads both, and the registry keeps it with the
package.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score


def read_predictions(folder: Path) -> list[list[str]]:
    files = sorted(p for p in folder.rglob("*.out") if p.is_file())
    if not files:
        raise SystemExit(f"no batch transform output (*.out) under {folder}")
    rows: list[list[str]] = []
    for path in files:
        with open(path, newline="") as handle:
            rows.extend(r for r in csv.reader(handle) if r)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--package-type", required=True)
    args = parser.parse_args()

    predictions = read_predictions(Path("predictions"))  # input record, then probability and 0/1
    with open("truth/labels.csv", newline="") as handle:
        truth = list(csv.DictReader(handle))
    split = json.loads(Path("truth/split.json").read_text())
    if len(predictions) != len(truth):
        raise SystemExit(f"{len(predictions)} predictions for {len(truth)} validation labels")
    for line, (prediction, label) in enumerate(zip(predictions, truth), start=1):
        if prediction[0] != label["product_id"]:
            raise SystemExit(f"line {line}: prediction for product {prediction[0]}, label for {label['product_id']}")
    y = np.array([int(t["shipped_ok"]) for t in truth])
    p = np.array([float(r[-2]) for r in predictions])
    decided = np.array([int(r[-1]) for r in predictions])
    report = {
        "package_type": args.package_type,
        "metrics": {
            "roc_auc": {"value": round(float(roc_auc_score(y, p)), 4)},
            "accuracy": {"value": round(float(accuracy_score(y, decided)), 4)},
            "f1": {"value": round(float(f1_score(y, decided, zero_division=0)), 4)},
            "log_loss": {"value": round(float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])), 4)},
        },
        "data": {**split, "validation_ok_rate": round(float(y.mean()), 4)},
    }
    Path("evaluation").mkdir(exist_ok=True)
    Path("evaluation/evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
