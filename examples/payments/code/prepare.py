"""Features of one market's orders: train.csv (features + label), test.csv (the same, held out), features.csv.

    python prepare.py --market DE    # reads input/orders/{train,test}.jsonl

test.csv is what the evaluation report reads (features with a header, and the label); features.csv is the same
rows without header or label, what the batch transform predicts on, in the same order.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from orders import FEATURE_COUNT, features

LABEL = "defaulted"
HEADER = [f"f{index:02d}" for index in range(FEATURE_COUNT)]


def rows_of(path: Path, market: str) -> list[tuple[list[float], int]]:
    """(features, label) of every order of ``market`` in a JSON Lines file."""
    found = []
    with path.open() as handle:
        for line in handle:
            order = json.loads(line)
            if order["customer"]["country"] == market:
                found.append((features(order), int(order[LABEL])))
    return found


def write(path: Path, rows: list[tuple[list[float], int]], header: bool, label: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(HEADER + ([LABEL] if label else []))
        for values, target in rows:
            writer.writerow([repr(float(v)) for v in values] + ([target] if label else []))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--market", required=True)
    args = parser.parse_args()
    market = args.market.upper()
    train = rows_of(Path("input/orders/train.jsonl"), market)
    test = rows_of(Path("input/orders/test.jsonl"), market)
    if not train or not test:
        raise SystemExit(f"no orders of market {market} in input/orders (train: {len(train)}, test: {len(test)})")
    write(Path("output/train/train.csv"), train, header=True, label=True)
    write(Path("output/test/test.csv"), test, header=True, label=True)
    write(Path("output/features/features.csv"), test, header=False, label=False)
    rate = sum(t for _, t in train) / len(train)
    print(f"market {market}: {len(train)} training and {len(test)} held-out orders, default rate {rate:.3f}")


if __name__ == "__main__":
    main()
