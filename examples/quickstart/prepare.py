"""Split the labelled CSV in input/ into output/train/train.csv and output/test/test.csv, stratified by target."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from sklearn.model_selection import train_test_split

LABEL = "target"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read --train-ratio and --seed, rejecting a ratio that leaves either split empty."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--train-ratio", type=float, default=0.8, help="share of rows for training, in (0, 1)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the shuffle")
    args = parser.parse_args(argv)
    if not 0.0 < args.train_ratio < 1.0:
        parser.error(f"--train-ratio must be strictly between 0 and 1, got {args.train_ratio}")
    return args


def find_input_csv(folder: Path) -> Path:
    """Return the one CSV file staged in `folder`, or exit with a message saying what was found instead."""
    found = sorted(folder.glob("*.csv"))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        sys.exit(f"prepare: expected exactly one CSV file in {folder}/, found {names}")
    return found[0]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Write `rows` under `header`, creating the parent folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    source = find_input_csv(Path("input"))
    with source.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    if LABEL not in header:
        sys.exit(f"prepare: {source.name} has no '{LABEL}' column (columns: {', '.join(header)})")
    labels = [row[header.index(LABEL)] for row in rows]
    try:
        train, test = train_test_split(
            rows, train_size=args.train_ratio, random_state=args.seed, shuffle=True, stratify=labels
        )
    except ValueError as exc:  # e.g. a ratio so extreme that a split cannot hold every class
        sys.exit(f"prepare: cannot split {len(rows)} rows with --train-ratio {args.train_ratio}: {exc}")
    write_csv(Path("output/train/train.csv"), header, train)
    write_csv(Path("output/test/test.csv"), header, test)
    print(f"read {len(rows)} rows from {source.name}: {len(train)} train, {len(test)} test")


if __name__ == "__main__":
    main()
