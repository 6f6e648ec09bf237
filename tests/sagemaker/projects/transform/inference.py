"""The user's inference handlers for a scikit-learn-container model: a weighted sum of each CSV row."""

import json
import os

import numpy as np


def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as handle:
        return np.array(json.load(handle)["weights"])


def input_fn(body, content_type):
    text = body.decode() if isinstance(body, bytes) else body
    return np.array([[float(v) for v in line.split(",")] for line in text.splitlines() if line.strip()])


def predict_fn(data, model):
    return data @ model


def output_fn(prediction, accept):
    return "".join(f"{value:.4f}\n" for value in prediction)
