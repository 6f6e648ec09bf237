"""The serving benchmark's model as an MLflow pyfunc model, built by the interpreter of an environment with MLflow.

    <mlflow env>/bin/python serving_mlflow.py <model.joblib> <destination folder>

MLflow's scoring server takes pandas-shaped JSON, so the benchmark posts each order as
``{"dataframe_records": [order]}``; ``predict`` turns the frame's rows back into orders and runs the same
``features`` and classifier as the other servers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import mlflow.pyfunc


class FraudModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """The fraud classifier behind MLflow's pyfunc interface."""

    def load_context(self, context: Any) -> None:
        """Load the fitted classifier."""
        import joblib

        self.model = joblib.load(context.artifacts["model"])

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        """Orders (a DataFrame of nested records) in, fraud probabilities out."""
        import numpy
        from serving_model import features

        orders = model_input.to_dict("records") if hasattr(model_input, "to_dict") else list(model_input)
        return self.model.predict_proba(numpy.array([features(order) for order in orders]))[:, 1]


if __name__ == "__main__":
    model_file, destination = Path(sys.argv[1]), Path(sys.argv[2])
    mlflow.pyfunc.save_model(str(destination), python_model=FraudModel(), artifacts={"model": str(model_file)},
                             code_paths=[str(Path(__file__).with_name("serving_model.py")),
                                         str(Path(__file__).resolve().parents[1] / "examples" / "payments" / "code"
                                             / "orders.py")])
