"""Fill a warehouse with products and customer feedback on how they shipped, one week at a time.

    python examples/packaging/generate.py --warehouse .forgeline/packaging/warehouse.duckdb       # week 1
    python examples/packaging/generate.py --warehouse .forgeline/packaging/warehouse.duckdb       # week 2, ...
    python examples/packaging/generate.py --warehouse .forgeline/packaging/warehouse.duckdb --drift 0.5

Every run adds the next week (or ``--week N``, which replaces that week): the products added that week and
``--labels`` pieces of feedback per package type saying whether a product shipped fine in a mailer, a bag, a
box or with no package at all. Everything is a function of ``--seed`` and the week, so a week generated twice
is the same week. ``--drift`` is the share of good shipments that customers report as damaged anyway that
week (a careless carrier): the labels get noisier and their distribution shifts, so a model trained on that
week is worse.

The warehouse is a DuckDB file (a path, or ``duckdb:////abs/path``) or any SQLAlchemy URL, e.g.
``postgresql+psycopg://user@host/db``; without ``--warehouse``, ``$PACKAGING_WAREHOUSE`` or the file above.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent / "code"))

from features import CATEGORIES, PACKAGE_TYPES  # noqa: E402
from warehouse import create_tables, insert_rows, package_predictions, products, shipping_feedback  # noqa: E402
from warehouse import transaction, warehouse_url  # noqa: E402

DEFAULT_WAREHOUSE = ".forgeline/packaging/warehouse.duckdb"

WEEK_ONE = date(2025, 1, 6)
"""The Monday of week 1: the calendar is fixed so that a seed and a week always give the same data."""

# category: (length, width, height) ranges in cm, weight range in kg, fragility range, share of liquids
CATALOGUE = {
    "apparel": ((20, 45), (15, 35), (1, 8), (0.1, 1.5), (0.0, 0.1), 0.0),
    "books": ((15, 30), (10, 22), (1, 6), (0.2, 1.5), (0.05, 0.2), 0.0),
    "cosmetics": ((5, 20), (3, 10), (2, 8), (0.05, 0.6), (0.3, 0.7), 0.6),
    "electronics": ((10, 60), (8, 40), (2, 25), (0.2, 8.0), (0.4, 0.9), 0.0),
    "glassware": ((8, 40), (8, 30), (8, 30), (0.3, 5.0), (0.8, 1.0), 0.1),
    "kitchen": ((15, 60), (10, 40), (5, 30), (0.3, 10.0), (0.2, 0.6), 0.2),
    "tools": ((15, 90), (5, 40), (3, 25), (0.5, 20.0), (0.0, 0.15), 0.05),
    "toys": ((10, 60), (8, 40), (5, 40), (0.1, 4.0), (0.1, 0.4), 0.0),
}
assert tuple(sorted(CATALOGUE)) == CATEGORIES


def week_start(week: int) -> date:
    """The Monday of ``week`` (1-based)."""
    return WEEK_ONE + timedelta(days=7 * (week - 1))


def make_products(rng: np.random.Generator, first_id: int, count: int, first_day: date, days: int) -> list[dict]:
    """``count`` products with ids from ``first_id``, added on a day among ``days`` from ``first_day``."""
    rows = []
    for offset in range(count):
        category = CATEGORIES[rng.integers(len(CATEGORIES))]
        length, width, height, weight, fragility, liquid_share = CATALOGUE[category]
        sides = sorted((rng.uniform(*length), rng.uniform(*width), rng.uniform(*height)), reverse=True)
        product_id = first_id + offset
        rows.append({
            "product_id": product_id, "sku": f"SKU-{product_id:06d}", "category": category,
            "length_cm": round(sides[0], 1), "width_cm": round(sides[1], 1), "height_cm": round(sides[2], 1),
            "weight_kg": round(float(rng.uniform(*weight)), 3), "fragility": round(float(rng.uniform(*fragility)), 3),
            "liquid": bool(rng.random() < liquid_share),
            "added_on": first_day + timedelta(days=int(rng.integers(days))),
        })
    return rows


def relu(x: float) -> float:
    return max(0.0, x)


def ships_ok_logit(product: dict, package_type: str) -> float:
    """How well a product ships in a package type: the hidden truth the models have to learn."""
    length, width, height = product["length_cm"], product["width_cm"], product["height_cm"]
    weight, fragility, liquid = product["weight_kg"], product["fragility"], float(product["liquid"])
    if package_type == "mailer":  # a padded envelope: small, flat, light and sturdy
        return (3.5 - 0.25 * relu(length - 35) - 0.3 * relu(width - 25) - 1.5 * relu(height - 4)
                - 3.0 * relu(weight - 1) - 5.0 * fragility - 2.0 * liquid)
    if package_type == "bag":  # a poly bag: soft goods
        return (3.0 - 0.15 * relu(length - 50) - 0.2 * relu(width - 40) - 0.5 * relu(height - 12)
                - 1.5 * relu(weight - 3) - 7.0 * fragility - 2.5 * liquid + (1.0 if product["category"] == "apparel" else 0.0))
    if package_type == "box":  # a cardboard box: nearly everything, but heavy fragile goods still break
        return 3.0 - 5.0 * fragility * min(1.0, weight / 2) - 0.08 * relu(length - 80) - 0.3 * relu(weight - 15)
    if package_type == "none":  # shipped in its own packaging: big and sturdy only
        return -2.0 + 0.06 * length + 0.4 * min(weight, 10.0) - 7.0 * fragility - 2.0 * liquid - 2.0 * (length < 20)
    raise ValueError(f"unknown package type {package_type!r}")


def make_feedback(rng: np.random.Generator, catalogue: list[dict], week: int, per_type: int,
                  drift: float) -> list[dict]:
    """``per_type`` labels per package type for distinct products; ``drift`` flips good outcomes to damaged."""
    rows = []
    for package_type in PACKAGE_TYPES:
        chosen = rng.choice(len(catalogue), size=min(per_type, len(catalogue)), replace=False)
        for index in sorted(chosen):
            product = catalogue[index]
            ok = rng.random() < 1.0 / (1.0 + np.exp(-ships_ok_logit(product, package_type)))
            if ok and rng.random() < drift:
                ok = False
            rows.append({"product_id": product["product_id"], "package_type": package_type, "week": week,
                         "shipped_ok": bool(ok), "received_on": week_start(week) + timedelta(days=int(rng.integers(7)))})
    return rows


def catalogue_until(seed: int, base_products: int, new_per_week: int, week: int) -> list[dict]:
    """Every product that exists by the end of ``week``: the base catalogue plus each week's additions."""
    rows = make_products(np.random.default_rng([seed, 0]), 1, base_products, WEEK_ONE - timedelta(days=365), 365)
    for w in range(1, week + 1):
        first_id = base_products + (w - 1) * new_per_week + 1
        rows += make_products(np.random.default_rng([seed, w, 1]), first_id, new_per_week, week_start(w), 7)
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", default=os.environ.get("PACKAGING_WAREHOUSE", DEFAULT_WAREHOUSE),
                        help="a DuckDB file path or a SQLAlchemy URL (default: $PACKAGING_WAREHOUSE, else %(default)s)")
    parser.add_argument("--week", type=int, help="the week to (re)generate; default: the week after the last one")
    parser.add_argument("--drift", type=float, default=0.0, help="share of good shipments reported as damaged")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--products", type=int, default=2000, help="products in the catalogue before week 1")
    parser.add_argument("--new-products", type=int, default=100, help="products added each week")
    parser.add_argument("--labels", type=int, default=1000, help="pieces of feedback per package type and week")
    parser.add_argument("--reset", action="store_true", help="drop everything (predictions too) and start over")
    args = parser.parse_args(argv)
    if not 0.0 <= args.drift <= 1.0:
        parser.error("--drift is a share between 0 and 1")
    location = warehouse_url(args.warehouse)
    if location.startswith("duckdb:///"):
        Path(location.removeprefix("duckdb:///")).parent.mkdir(parents=True, exist_ok=True)

    with transaction(location) as connection:
        if args.reset:
            for table in (package_predictions, shipping_feedback, products):
                table.drop(connection, checkfirst=True)
        create_tables(connection)
        last_week = connection.execute(sa.select(sa.func.max(shipping_feedback.c.week))).scalar() or 0
        week = args.week or last_week + 1
        if week < 1:
            parser.error("weeks start at 1")
        catalogue = catalogue_until(args.seed, args.products, args.new_products, week)
        known = set(connection.execute(sa.select(products.c.product_id)).scalars())
        insert_rows(connection, products, [p for p in catalogue if p["product_id"] not in known])
        connection.execute(shipping_feedback.delete().where(shipping_feedback.c.week == week))
        feedback = make_feedback(np.random.default_rng([args.seed, week, 2]), catalogue, week, args.labels,
                                 args.drift)
        insert_rows(connection, shipping_feedback, feedback)

    summary = {
        "week": week, "week_starts": week_start(week).isoformat(), "drift": args.drift,
        "products": len(catalogue),
        "labels": {t: sum(1 for f in feedback if f["package_type"] == t) for t in PACKAGE_TYPES},
        "ok_rate": {t: round(float(np.mean([f["shipped_ok"] for f in feedback if f["package_type"] == t])), 3)
                    for t in PACKAGE_TYPES},
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
