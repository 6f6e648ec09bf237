"""The inference contract of a packaging model (batch transform, the registry and endpoints all load it so).

Requests are CSV lines of RAW_COLUMNS (a feature file); each answer line is
``<probability it ships fine>,<1 if that is at least the threshold, else 0>``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import joblib

from features import feature_matrix, parse_record

THRESHOLD = float(os.environ.get("PACKAGING_THRESHOLD", "0.5"))


def model_fn(model_dir):
    meta = json.loads(Path(model_dir, "meta.json").read_text())
    return {"estimator": joblib.load(Path(model_dir, "model.joblib")), "meta": meta}


def input_fn(body, content_type):
    if not content_type.startswith("text/csv"):
        raise ValueError(f"packaging models read text/csv, got {content_type!r}")
    text = body.decode() if isinstance(body, (bytes, bytearray)) else body
    return [parse_record(values) for values in csv.reader(io.StringIO(text)) if values]


def predict_fn(records, model):
    if not records:
        return []
    x = feature_matrix(records, model["meta"]["feature_set"])
    return [float(p) for p in model["estimator"].predict_proba(x)[:, 1]]


def output_fn(probabilities, accept):
    return "".join(f"{p:.6f},{int(p >= THRESHOLD)}\n" for p in probabilities)
