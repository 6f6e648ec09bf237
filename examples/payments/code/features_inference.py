"""The endpoint's first stage: JSON order(s) in, their feature rows out as CSV (what the model stage reads).

It calls ``orders.features``, the very function the Prepare step made the training data with.
"""

from __future__ import annotations

import json
from pathlib import Path

from orders import FEATURE_COUNT, features


def model_fn(model_dir):
    names = json.loads((Path(model_dir) / "feature_names.json").read_text())
    if len(names) != FEATURE_COUNT:
        raise ValueError(f"feature_names.json names {len(names)} features; orders.features makes {FEATURE_COUNT}")
    return names


def input_fn(body, content_type):
    orders = json.loads(body)
    return [orders] if isinstance(orders, dict) else orders


def predict_fn(orders, model):
    return [features(order) for order in orders]


def output_fn(rows, accept):
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows)
