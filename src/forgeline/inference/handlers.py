"""Default inference handlers (SageMaker's toolkit defaults): used for whatever the entry point does not define."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

from forgeline.errors import ModelRegistryError

JSON = "application/json"
CSV = "text/csv"
MODEL_FILES = ("model.joblib", "model.pkl", "model.pickle")


def media_type(content_type: str) -> str:
    """The bare media type of a Content-Type or Accept value (``application/json; charset=utf-8`` → JSON)."""
    return content_type.split(";", 1)[0].strip().lower()


def default_model_fn(model_dir: str) -> Any:
    """Load ``model.joblib`` (with joblib) or ``model.pkl`` (with pickle) from the model directory."""
    folder = Path(model_dir)
    for name in MODEL_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if path.suffix == ".joblib":
            try:
                import joblib
            except ImportError:
                raise ModelRegistryError(f"{path} needs joblib to load: pip install joblib") from None
            return joblib.load(path)
        with path.open("rb") as handle:
            return pickle.load(handle)
    present = ", ".join(sorted(p.name for p in folder.iterdir())[:10]) if folder.is_dir() else "nothing"
    raise ModelRegistryError(
        f"the model directory {folder} has no {' or '.join(MODEL_FILES)} (it has: {present or 'nothing'}); "
        "define model_fn(model_dir) in the entry point to load the model"
    )


def default_input_fn(body: Any, content_type: str) -> Any:
    """JSON → lists and dicts; CSV → rows of floats (a numpy array when numpy is installed)."""
    if not isinstance(body, (bytes, bytearray, str)):
        return body  # already decoded by a Python caller
    text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    kind = media_type(content_type)
    if kind == JSON:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelRegistryError(f"the request body is not valid JSON: {exc}") from None
    if kind == CSV:
        return _csv_rows(text)
    raise ModelRegistryError(
        f"unsupported content type {content_type!r}: the default input_fn reads {JSON} and {CSV}; "
        "define input_fn(body, content_type) in the entry point"
    )


def default_predict_fn(data: Any, model: Any) -> Any:
    """``model.predict(data)``."""
    predict = getattr(model, "predict", None)
    if not callable(predict):
        raise ModelRegistryError(
            f"the model ({type(model).__name__}) has no predict method; define predict_fn(data, model) in the "
            "entry point"
        )
    return predict(data)


def default_output_fn(prediction: Any, accept: str) -> str:
    """JSON (numpy arrays and scalars become lists and numbers) or CSV lines, as ``accept`` asks."""
    kind = media_type(accept)
    if kind == JSON:
        return json.dumps(prediction, default=_plain)
    if kind == CSV:
        rows = _plain(prediction) if hasattr(prediction, "tolist") else prediction
        if not isinstance(rows, (list, tuple)):
            rows = [rows]
        return "".join(
            (",".join(str(v) for v in row) if isinstance(row, (list, tuple)) else str(row)) + "\n" for row in rows
        )
    raise ModelRegistryError(
        f"unsupported accept type {accept!r}: the default output_fn writes {JSON} and {CSV}; "
        "define output_fn(prediction, accept) in the entry point"
    )


def _csv_rows(text: str) -> Any:
    try:
        rows = [[float(value) for value in line.split(",")] for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise ModelRegistryError(f"the CSV body holds a value that is not a number: {exc}") from None
    try:
        import numpy
    except ImportError:
        return rows
    return numpy.array(rows)


def _plain(value: Any) -> Any:
    # numpy arrays and scalars (and anything else with tolist/item) as plain Python values
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            return convert()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable; define output_fn(prediction, accept)")
