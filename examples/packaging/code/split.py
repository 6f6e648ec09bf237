"""Split a labelled file into a training set and a validation set, stratified by the label and seeded.

Writes ``output/train/train.csv`` (labelled, with a header), ``output/validation/features.csv`` (what batch
transform reads: RAW_COLUMNS, no header) and ``output/truth/labels.csv`` + ``output/truth/split.json`` (the
validation labels, and the sizes and label distribution of the training set, for the evaluation).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from sklearn.model_selection import train_test_split

from features import LABEL, RAW_COLUMNS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ratio", type=float, default=0.8, help="share of the rows used for training")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not 0.0 < args.ratio < 1.0:
        raise SystemExit(f"--ratio must be between 0 and 1, got {args.ratio}")

    with open("input/labelled.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    labels = [int(r[LABEL]) for r in rows]
    if len(rows) < 10 or len(set(labels)) < 2:
        raise SystemExit(f"cannot train on {len(rows)} row(s) with labels {sorted(set(labels))}: "
                         "the model needs both outcomes")
    train, validation = train_test_split(rows, train_size=args.ratio, random_state=args.seed, stratify=labels)
    weeks = sorted({int(r["week"]) for r in rows})

    for folder in ("train", "validation", "truth"):
        Path("output", folder).mkdir(parents=True, exist_ok=True)
    with open("output/train/train.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*RAW_COLUMNS, LABEL], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(train)
    with open("output/validation/features.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([[r[c] for c in RAW_COLUMNS] for r in validation])
    with open("output/truth/labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["product_id", LABEL], *([r["product_id"], r[LABEL]] for r in validation)])
    split = {
        "training_rows": len(train), "validation_rows": len(validation), "weeks": [weeks[0], weeks[-1]],
        "ok_rate": round(sum(labels) / len(labels), 4),  # of all the labels of the period, before the split
    }
    Path("output/truth/split.json").write_text(json.dumps(split, indent=2) + "\n")
    print(json.dumps(split))


if __name__ == "__main__":
    main()
