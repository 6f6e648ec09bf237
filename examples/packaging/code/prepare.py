"""Unload the products to score into feature files of ``--file-size`` products each, and a manifest.

``--mode daily`` takes the products added since ``--since`` (default: the day before the prediction date);
``--mode monthly`` takes the whole inventory. Writes ``output/features/part-NNNNN.csv`` (RAW_COLUMNS, no header:
what batch transform reads, one output file per input file) and ``output/manifest/manifest.json``.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from features import RAW_COLUMNS, format_record
from warehouse import products, transaction

MODES = ("daily", "monthly")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--mode", required=True, choices=MODES)
    parser.add_argument("--since", default="", help="daily: products added on or after this date (YYYY-MM-DD)")
    parser.add_argument("--prediction-date", default="", help="the date the predictions are for (default: today)")
    parser.add_argument("--file-size", type=int, default=500, help="products per feature file")
    args = parser.parse_args()
    if args.file_size < 1:
        raise SystemExit("--file-size must be at least 1")
    try:
        prediction_date = date.fromisoformat(args.prediction_date) if args.prediction_date \
            else datetime.now(UTC).date()
        since = date.fromisoformat(args.since) if args.since else prediction_date - timedelta(days=1)
    except ValueError as exc:
        raise SystemExit(f"dates are YYYY-MM-DD: {exc}") from None

    query = sa.select(*(products.c[name] for name in RAW_COLUMNS)).order_by(products.c.product_id)
    if args.mode == "daily":
        query = query.where(products.c.added_on >= since)
    with transaction(args.warehouse, read_only=True) as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]

    folder = Path("output/features")
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    # At least one file, empty when there is nothing to score: the transform and the load then do nothing.
    for number, start in enumerate(range(0, max(len(rows), 1), args.file_size)):
        path = folder / f"part-{number:05d}.csv"
        path.write_text("".join(format_record(r) + "\n" for r in rows[start:start + args.file_size]))
        files.append(path.name)
    manifest = {"mode": args.mode, "since": since.isoformat() if args.mode == "daily" else None,
                "prediction_date": prediction_date.isoformat(), "products": len(rows), "files": files}
    Path("output/manifest").mkdir(parents=True, exist_ok=True)
    Path("output/manifest/manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
