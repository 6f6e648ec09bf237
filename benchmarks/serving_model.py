"""The serving benchmark's model: payment orders as nested JSON, 34 features from each, a fraud classifier.

Every server in ``bench_serving.py`` answers with this model and this feature code: the FastAPI baseline and the
MLflow model import ``features`` from here (it comes from ``examples/payments/code/orders.py``), and
forgeline's package ships this file and orders.py next to its entry point.

    python benchmarks/serving_model.py   # prints one generated order
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path
from typing import Any

# The generator and the feature code live with the payments example, which trains and serves the same model.
PAYMENTS_CODE = Path(__file__).resolve().parents[1] / "examples" / "payments" / "code"
if PAYMENTS_CODE.is_dir() and str(PAYMENTS_CODE) not in sys.path:  # in a package, orders.py sits beside this file
    sys.path.insert(0, str(PAYMENTS_CODE))

from orders import FEATURE_COUNT, features, fraud_label, make_order, orders  # noqa: E402

__all__ = ["FEATURE_COUNT", "ENTRY_POINT", "features", "fraud_label", "make_order", "orders", "train",
           "write_package"]
ENTRY_POINT = """\
\"\"\"Inference code of the benchmark's fraud model: JSON order(s) in, fraud probabilities out (rows batch).\"\"\"

import json
from pathlib import Path

import joblib
import numpy

from serving_model import features


def model_fn(model_dir):
    return joblib.load(Path(model_dir) / "model.joblib")


def input_fn(body, content_type):
    orders = json.loads(body)
    if isinstance(orders, dict):
        orders = [orders]
    return numpy.array([features(order) for order in orders], dtype=numpy.float64)


def predict_fn(rows, model):
    return model.predict_proba(rows)[:, 1]


def output_fn(prediction, accept):
    return json.dumps({"fraud_probability": [round(float(p), 6) for p in numpy.atleast_1d(prediction)]})
"""


def train(count: int = 20_000, seed: int = 7) -> Any:
    """A HistGradientBoostingClassifier fitted on ``count`` generated orders."""
    import numpy
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = random.Random(seed + 1)
    rows = [features(order) for order in orders(count, seed)]
    labels = [fraud_label(row, rng) for row in rows]
    return HistGradientBoostingClassifier(random_state=seed).fit(numpy.array(rows), numpy.array(labels))


def write_package(folder: Path, model: Any) -> tuple[Path, Path]:
    """The model folder (``model.joblib``) and the code folder (entry point + this module); returns both."""
    import joblib

    model_dir, code_dir = folder / "model", folder / "code"
    model_dir.mkdir(parents=True, exist_ok=True)
    code_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / "model.joblib")
    (code_dir / "inference.py").write_text(ENTRY_POINT)
    shutil.copy2(Path(__file__), code_dir / "serving_model.py")
    shutil.copy2(PAYMENTS_CODE / "orders.py", code_dir / "orders.py")
    return model_dir, code_dir


if __name__ == "__main__":
    [example] = orders(1)
    print(json.dumps(example, indent=2))
    assert len(features(example)) == FEATURE_COUNT
