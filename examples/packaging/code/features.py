"""Product features: the raw columns every file carries, and the feature sets a model may be trained on.

Files between steps are CSV. A feature file (what batch transform reads) has one product per line, no header,
in RAW_COLUMNS order; a labelled file has a header and a ``shipped_ok`` column (0/1) after them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

PACKAGE_TYPES = ("mailer", "bag", "box", "none")
CATEGORIES = ("apparel", "books", "cosmetics", "electronics", "glassware", "kitchen", "tools", "toys")
RAW_COLUMNS = ("product_id", "category", "length_cm", "width_cm", "height_cm", "weight_kg", "fragility", "liquid")
LABEL = "shipped_ok"

NUMERIC = ("length_cm", "width_cm", "height_cm", "weight_kg")
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    # what a warehouse scanner measures
    "dimensions": (*NUMERIC, "volume_l", "max_side_cm"),
    # plus what the catalogue says about the product
    "full": (*NUMERIC, "volume_l", "max_side_cm", "density_kg_l", "fragility", "liquid",
             *(f"category={c}" for c in CATEGORIES)),
}


def check_feature_set(name: str) -> tuple[str, ...]:
    """The feature names of a feature set, or exit with the valid names."""
    if name not in FEATURE_SETS:
        raise SystemExit(f"unknown feature set {name!r}: use one of {', '.join(FEATURE_SETS)}")
    return FEATURE_SETS[name]


def parse_record(values: Sequence[str]) -> dict[str, Any]:
    """One line of a feature file as a dict of RAW_COLUMNS (numbers as floats)."""
    if len(values) < len(RAW_COLUMNS):
        raise ValueError(f"a product record has {len(RAW_COLUMNS)} fields ({', '.join(RAW_COLUMNS)}), "
                         f"got {len(values)}: {','.join(values)}")
    record: dict[str, Any] = dict(zip(RAW_COLUMNS, values))
    record["product_id"] = int(record["product_id"])
    for name in (*NUMERIC, "fragility"):
        record[name] = float(record[name])
    record["liquid"] = str(record["liquid"]).strip().lower() in ("1", "true", "t", "yes")
    return record


def format_record(record: Mapping[str, Any]) -> str:
    """A product as one line of a feature file."""
    values = [record[name] for name in RAW_COLUMNS]
    values[-1] = int(bool(values[-1]))
    return ",".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values)


def derived(record: Mapping[str, Any]) -> dict[str, float]:
    """Every feature any feature set uses, for one product."""
    length, width, height = (float(record[n]) for n in ("length_cm", "width_cm", "height_cm"))
    volume = length * width * height / 1000.0
    values = {name: float(record[name]) for name in NUMERIC}
    values.update({
        "volume_l": volume,
        "max_side_cm": max(length, width, height),
        "density_kg_l": float(record["weight_kg"]) / max(volume, 1e-3),
        "fragility": float(record["fragility"]),
        "liquid": 1.0 if record["liquid"] else 0.0,
    })
    values.update({f"category={c}": 1.0 if record["category"] == c else 0.0 for c in CATEGORIES})
    return values


def feature_matrix(records: Iterable[Mapping[str, Any]], feature_set: str) -> np.ndarray:
    """The model's input: one row per product, the feature set's columns (log-scaled sizes keep trees and
    linear models alike happy)."""
    names = check_feature_set(feature_set)
    rows = []
    for record in records:
        values = derived(record)
        rows.append([math.log1p(values[n]) if n in (*NUMERIC, "volume_l", "max_side_cm", "density_kg_l")
                     else values[n] for n in names])
    return np.asarray(rows, dtype=float).reshape(-1, len(names))
