"""Serving the digits CNN through the inference contract: JSON in (8x8 images), JSON out (digits and scores)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from model import DigitsCNN


def model_fn(model_dir: str) -> DigitsCNN:
    """The trained network, in evaluation mode."""
    model = DigitsCNN()
    model.load_state_dict(torch.load(Path(model_dir, "model.pt"), weights_only=True))
    return model.eval()


def input_fn(body: bytes | str, content_type: str) -> torch.Tensor:
    """``{"images": [[...64 values 0-16...], ...]}`` or a bare list of images, as a float tensor N x 1 x 8 x 8."""
    if "json" not in content_type:
        raise ValueError(f"send application/json, not {content_type}")
    data = json.loads(body)
    images = np.asarray(data["images"] if isinstance(data, dict) else data, dtype=np.float32)
    return torch.from_numpy(images.reshape(-1, 1, 8, 8) / 16.0)


def predict_fn(images: torch.Tensor, model: DigitsCNN) -> dict:
    """The most likely digit of each image, and its probability."""
    with torch.no_grad():
        probabilities = torch.softmax(model(images), dim=1)
    best = probabilities.max(dim=1)
    return {"digits": best.indices.tolist(), "probabilities": [round(p, 4) for p in best.values.tolist()]}
