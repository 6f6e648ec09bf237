"""The network shared by train.py and evaluate.py: a small CNN for 8x8 grey digits."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

CLASSES = 10


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions, one pooling, two dense layers: about 40k weights."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, CLASSES))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))


def load_split(path: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of a .npz written by prepare.py."""
    with np.load(path) as data:
        return torch.from_numpy(data["images"]), torch.from_numpy(data["labels"])


def average_precision(positive: np.ndarray, scores: np.ndarray) -> float:
    """AP of one class: the mean of the precision at the rank of each positive (as scikit-learn computes it)."""
    order = np.argsort(-scores, kind="stable")
    hits = positive[order]
    if not hits.any():
        return 0.0
    precision_at_hit = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
    return float(precision_at_hit.mean())


@torch.no_grad()
def score(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy and macro-averaged average precision (AP) of the model's class probabilities."""
    model.eval()
    probabilities = torch.softmax(model(images), dim=1).numpy()
    truth = labels.numpy()
    return {
        "accuracy": float((probabilities.argmax(axis=1) == truth).mean()),
        "ap": float(np.mean([average_precision(truth == c, probabilities[:, c]) for c in range(CLASSES)])),
    }
