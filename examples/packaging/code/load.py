"""Load batch-transform predictions back into the warehouse table ``package_predictions``, idempotently.

Rows are upserted on (product, package type, prediction date, mode): loading the same predictions again, or
newer ones for the same day, replaces rows instead of adding them. Each row names the model package
(``<group>/<version>``) that made it.
"""

from __future__ import annotations

import argparse
import csv
import json
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa

from features import PACKAGE_TYPES
from warehouse import package_predictions, transaction, upsert_rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--package-type", required=True, choices=PACKAGE_TYPES)
    parser.add_argument("--model-package", required=True, help="the package that made the predictions: group/N")
    parser.add_argument("--execution-id", default="")
    args = parser.parse_args()
    group, _, version = args.model_package.rpartition("/")
    if not group or not version.isdigit():
        raise SystemExit(f"--model-package must look like 'packaging-mailer/3', got {args.model_package!r}")

    manifest = json.loads(Path("manifest/manifest.json").read_text())
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for path in sorted(Path("predictions").rglob("*.out")):
        with open(path, newline="") as handle:
            for record in csv.reader(handle):
                if not record:
                    continue
                rows.append({
                    "product_id": int(record[0]), "package_type": args.package_type,
                    "prediction_date": date.fromisoformat(manifest["prediction_date"]), "mode": manifest["mode"],
                    "probability_ok": float(record[-2]), "ships_ok": record[-1] == "1",
                    "model_package": args.model_package, "model_version": int(version),
                    "execution_id": args.execution_id, "loaded_at": loaded_at,
                })
    if len(rows) != manifest["products"]:
        raise SystemExit(f"{len(rows)} predictions for the {manifest['products']} products of the manifest")
    table = package_predictions.c
    with transaction(args.warehouse) as connection:
        package_predictions.create(connection, checkfirst=True)
        upsert_rows(connection, package_predictions, rows)
        stored = connection.execute(
            sa.select(sa.func.count()).where(table.package_type == args.package_type,
                                             table.prediction_date == date.fromisoformat(manifest["prediction_date"]),
                                             table.mode == manifest["mode"])).scalar()
    report = {"loaded": len(rows), "rows_for_the_day": stored, "model_package": args.model_package, **manifest}
    Path("report").mkdir(exist_ok=True)
    Path("report/load.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
