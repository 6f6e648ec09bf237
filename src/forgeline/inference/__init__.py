"""The inference contract (model_fn, input_fn, predict_fn, output_fn): one loader for the registry, batch
transform and real-time serving."""

from forgeline.inference.loader import ModelSource, Predictor, load_model

__all__ = ["ModelSource", "Predictor", "load_model"]
