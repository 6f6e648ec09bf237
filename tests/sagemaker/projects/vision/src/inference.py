"""Inference code for the vision model: CSV rows in, one class per line out."""
import os

import numpy as np
import torch


def model_fn(model_dir):
    state = torch.load(os.path.join(model_dir, "model.pt"))
    model = torch.nn.Linear(state["weight"].shape[1], 2)
    model.load_state_dict(state)
    return model


def input_fn(body, content_type):
    text = body.decode() if isinstance(body, bytes) else body
    return torch.tensor(np.loadtxt([r for r in text.splitlines() if r.strip()], delimiter=",", ndmin=2),
                        dtype=torch.float32)


def predict_fn(data, model):
    return model(data).argmax(1).tolist()


def output_fn(prediction, accept):
    return "".join(f"{p}\n" for p in prediction)
