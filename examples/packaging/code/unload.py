"""Unload one package type's feedback labels, joined with the products' features, from the warehouse to a file.

Writes ``output/dataset/labelled.csv`` (RAW_COLUMNS, ``week`` and ``shipped_ok``, with a header) for the last
``--weeks`` weeks of feedback, and prints what it unloaded (rows, weeks, share shipped fine).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import sqlalchemy as sa

from features import LABEL, PACKAGE_TYPES, RAW_COLUMNS
from warehouse import products, shipping_feedback, transaction


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--package-type", required=True, choices=PACKAGE_TYPES)
    parser.add_argument("--weeks", type=int, default=1, help="how many of the latest weeks of feedback to use")
    args = parser.parse_args()
    if args.weeks < 1:
        raise SystemExit("--weeks must be at least 1")

    feedback = shipping_feedback.c
    with transaction(args.warehouse, read_only=True) as connection:
        last = connection.execute(sa.select(sa.func.max(feedback.week))
                                  .where(feedback.package_type == args.package_type)).scalar()
        if last is None:
            raise SystemExit(f"the warehouse has no feedback for package type {args.package_type!r} yet: "
                             "add a week with examples/packaging/generate.py")
        first = max(1, last - args.weeks + 1)
        query = (
            sa.select(*(products.c[name] for name in RAW_COLUMNS), feedback.week, feedback.shipped_ok)
            .join(shipping_feedback, products.c.product_id == feedback.product_id)
            .where(feedback.package_type == args.package_type, feedback.week.between(first, last))
            .order_by(feedback.week, products.c.product_id)
        )
        rows = connection.execute(query).all()

    Path("output/dataset").mkdir(parents=True, exist_ok=True)
    with open("output/dataset/labelled.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*RAW_COLUMNS, "week", LABEL])
        for row in rows:
            *values, week, ok = row
            values[-1] = int(bool(values[-1]))  # liquid
            writer.writerow([*values, week, int(bool(ok))])
    profile = {"package_type": args.package_type, "weeks": [first, last], "rows": len(rows),
               "ok_rate": round(sum(bool(r[-1]) for r in rows) / max(len(rows), 1), 4)}
    print(json.dumps(profile))


if __name__ == "__main__":
    main()
