"""The inference contract of a market's model: feature rows (CSV) in, default probabilities out.

The same code answers the batch transform, the evaluation report's baseline scoring and the endpoint's second
stage. Answers: one probability per line for ``text/csv``, ``{"default_probability": [...]}`` for JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import xgboost


def model_fn(model_dir):
    folder = Path(model_dir)
    booster = xgboost.XGBClassifier()
    booster.load_model(folder / "xgboost.json")
    blend = json.loads((folder / "blend.json").read_text())
    return {"hgb": joblib.load(folder / "hgb.joblib"), "xgboost": booster, "weight": blend["xgboost_weight"]}


def predict_fn(rows, model):
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    weight = model["weight"]
    return ((1 - weight) * model["hgb"].predict_proba(rows)[:, 1]
            + weight * model["xgboost"].predict_proba(rows)[:, 1])


def output_fn(prediction, accept):
    if accept.startswith("text/csv"):
        return "".join(f"{p:.6f}\n" for p in prediction)
    return json.dumps({"default_probability": [round(float(p), 6) for p in prediction]})
