"""Default inference handlers (SageMaker's toolkit defaults): used for whatever the entry point does not define."""

from __future__ import annotations

import io
import json
import pickle
import sys
from pathlib import Path
from typing import Any

from forgeline.errors import InferenceError

JSON = "application/json"
CSV = "text/csv"
JSON_LINES = "application/jsonlines"
JSON_LINES_ALIASES = frozenset({JSON_LINES, "application/x-jsonlines", "application/jsonl", "application/x-ndjson"})
MODEL_FILES = ("model.joblib", "model.pkl", "model.pickle")
SMALL_RANGE = 1024
"""Integer predictions spanning fewer values than this (class labels) are formatted through a lookup table."""


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
                raise InferenceError(f"{path} needs joblib to load: pip install joblib") from None
            return joblib.load(path)
        with path.open("rb") as handle:
            return pickle.load(handle)
    present = ", ".join(sorted(p.name for p in folder.iterdir())[:10]) if folder.is_dir() else "nothing"
    raise InferenceError(
        f"the model directory {folder} has no {' or '.join(MODEL_FILES)} (it has: {present or 'nothing'}); "
        "define model_fn(model_dir) in the entry point to load the model"
    )


def default_input_fn(body: Any, content_type: str) -> Any:
    """JSON → lists and dicts; JSON lines → a list of documents; CSV → rows of floats (a 2-D numpy array)."""
    if not isinstance(body, (bytes, bytearray, str)):
        return body  # already decoded by a Python caller
    kind = media_type(content_type)
    if kind == CSV:
        return csv_rows(body)
    if kind == JSON:
        return _json_document(body)
    if kind in JSON_LINES_ALIASES:
        return _json_lines(body)
    raise InferenceError(
        f"unsupported content type {content_type!r}: the default input_fn reads {JSON}, {JSON_LINES} and {CSV}; "
        "define input_fn(body, content_type) in the entry point"
    )


def default_predict_fn(data: Any, model: Any) -> Any:
    """``model.predict(data)``."""
    predict = getattr(model, "predict", None)
    if not callable(predict):
        raise InferenceError(
            f"the model ({type(model).__name__}) has no predict method; define predict_fn(data, model) in the "
            "entry point"
        )
    return predict(data)


def default_output_fn(prediction: Any, accept: str) -> str:
    """JSON (numpy arrays and scalars become lists and numbers), JSON lines or CSV lines, as ``accept`` asks."""
    kind = media_type(accept)
    if kind == JSON:
        return json.dumps(prediction, default=_plain)
    if kind == CSV:
        return csv_lines(prediction)
    if kind in JSON_LINES_ALIASES:
        rows = _plain(prediction) if hasattr(prediction, "tolist") else prediction
        if not isinstance(rows, (list, tuple)):
            rows = [rows]
        return "".join(json.dumps(row, default=_plain) + "\n" for row in rows)
    raise InferenceError(
        f"unsupported accept type {accept!r}: the default output_fn writes {JSON}, {JSON_LINES} and {CSV}; "
        "define output_fn(prediction, accept) in the entry point"
    )


def csv_rows(body: bytes | bytearray | str) -> Any:
    """A CSV body of numbers as a 2-D float64 numpy array (one row per non-blank line); lists without numpy.

    numpy's C reader (``loadtxt``, numpy ≥ 1.23) parses about ten times faster than ``float()`` per value, which
    makes it the hot path of a batch transform over CSV.
    """
    try:
        import numpy
    except ImportError:
        return _python_csv_rows(body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body)
    if not body or body.isspace():  # not strip(): that copies the whole body
        return numpy.array([])
    stream = io.StringIO(body) if isinstance(body, str) else io.BytesIO(body)
    try:
        return numpy.loadtxt(stream, delimiter=",", dtype=numpy.float64, ndmin=2, comments=None, encoding="utf-8")
    except ValueError as exc:
        problem = ("rows of different lengths" if "number of columns" in str(exc)
                   else "a value that is not a number")
        raise InferenceError(f"the CSV body holds {problem}: {exc}") from None


def csv_lines(prediction: Any) -> str:
    """One CSV line per prediction (per row of a 2-D prediction), each ending with a newline.

    numpy arrays of one or two dimensions are formatted through one ``str`` per value and a single join, with no
    Python loop per row; anything else goes through the row-by-row path.
    """
    numpy = sys.modules.get("numpy")  # without numpy loaded, the prediction cannot be an array
    if numpy is not None and isinstance(prediction, numpy.ndarray) and prediction.ndim in (1, 2) and prediction.size:
        values = _texts(prediction.ravel())
        if prediction.ndim == 1 or prediction.shape[1] == 1:
            return "\n".join(values) + "\n"
        rows, columns = prediction.shape
        parts: list[str] = [""] * (2 * len(values))
        parts[0::2] = values
        parts[1::2] = ([","] * (columns - 1) + ["\n"]) * rows
        return "".join(parts)
    rows = _plain(prediction) if hasattr(prediction, "tolist") else prediction
    if not isinstance(rows, (list, tuple)):
        rows = [rows]
    return "".join(
        (",".join(str(v) for v in row) if isinstance(row, (list, tuple)) else str(row)) + "\n" for row in rows
    )


def _texts(values: Any) -> list[str]:
    """``str`` of every value of a flat numpy array; class labels (integers in a small range) through a table."""
    if values.dtype.kind in "iu" and values.size > SMALL_RANGE:
        low, high = int(values.min()), int(values.max())
        if high - low < SMALL_RANGE:
            import numpy

            wide = values.astype(numpy.int64 if values.dtype.kind == "i" else numpy.uint64)  # no overflow below
            words = [str(number) for number in range(low, high + 1)]
            return list(map(words.__getitem__, (wide - wide.dtype.type(low)).tolist()))
    return list(map(str, values.tolist()))


def _json_document(body: bytes | bytearray | str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several documents, one a line: a batch of JSON records
            return _json_lines(body)
        raise InferenceError(f"the request body is not valid JSON: {exc}") from None


def _json_lines(body: bytes | bytearray | str) -> list[Any]:
    text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    documents = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                documents.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InferenceError(f"line {number} of the request body is not valid JSON: {exc}") from None
    return documents


def _python_csv_rows(text: str) -> list[list[float]]:
    try:
        return [[float(value) for value in line.split(",")] for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise InferenceError(f"the CSV body holds a value that is not a number: {exc}") from None


def _plain(value: Any) -> Any:
    # numpy arrays and scalars (and anything else with tolist/item) as plain Python values
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            return convert()
    raise InferenceError(f"the prediction holds a {type(value).__name__}, which JSON cannot hold; "
                         "define output_fn(prediction, accept) in the entry point")
