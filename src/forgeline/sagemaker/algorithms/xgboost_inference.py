"""Inference for models of SageMaker's built-in XGBoost algorithm: CSV or libsvm in, one prediction per line out."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb


def model_fn(model_dir: str) -> xgb.Booster:
    """The booster in ``xgboost-model`` (pickled, or in XGBoost's own format)."""
    path = Path(model_dir, "xgboost-model")
    try:
        with open(path, "rb") as handle:
            booster: xgb.Booster = pickle.load(handle)
        return booster
    except (pickle.UnpicklingError, EOFError, ValueError):
        booster = xgb.Booster()
        booster.load_model(str(path))
        return booster


def input_fn(body: Any, content_type: str) -> xgb.DMatrix:
    """Rows of features (no label): CSV lines or libsvm lines."""
    text = body.decode() if isinstance(body, bytes) else str(body)
    if "libsvm" in content_type:
        with tempfile.NamedTemporaryFile("w", suffix=".libsvm", delete=False) as handle:
            handle.write(text)
        try:
            return xgb.DMatrix(f"{handle.name}?format=libsvm")
        finally:
            os.unlink(handle.name)
    rows = [line for line in text.splitlines() if line.strip()]
    return xgb.DMatrix(np.loadtxt(rows, delimiter=",", ndmin=2))


def predict_fn(data: xgb.DMatrix, model: xgb.Booster) -> Any:
    """The booster's predictions."""
    return model.predict(data)


def output_fn(prediction: Any, accept: str) -> str:
    """One prediction per line, as the container writes text/csv."""
    return "".join(f"{float(v)}\n" for v in np.asarray(prediction).reshape(len(prediction), -1)[:, 0])
