"""Score the trained model (model/model.tar.gz) on test/test.npz and write evaluation/evaluation.json."""

from __future__ import annotations

import json
import sys
import tarfile
import tempfile
from pathlib import Path

import torch

from model import DigitsCNN, load_split, score


def main() -> None:
    archive = Path("model/model.tar.gz")
    if not archive.is_file():
        sys.exit(f"evaluate: {archive} not found; the training step's model_artifacts must be staged at model/")
    model = DigitsCNN()
    with tempfile.TemporaryDirectory() as unpacked:
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
        model.load_state_dict(torch.load(Path(unpacked, "model.pt"), weights_only=True))
    images, labels = load_split("test/test.npz")
    scores = score(model, images, labels)
    report = {"metrics": {"accuracy": {"value": scores["accuracy"]},
                          "average_precision": {"value": scores["ap"]}}}
    Path("evaluation").mkdir(exist_ok=True)
    Path("evaluation/evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
