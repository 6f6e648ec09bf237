"""Fixtures for registry tests: a tiny picklable model whose class lives in its own code folder."""

from __future__ import annotations

import importlib.util
import pickle
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

TINY_MODEL = """
class TinyModel:
    def __init__(self, weights, bias):
        self.weights, self.bias = list(weights), bias

    def predict(self, rows):
        return [sum(w * float(x) for w, x in zip(self.weights, row)) + self.bias for row in rows]
"""


def write_tiny_model(code_dir: Path, model_dir: Path, weights: tuple[float, ...] = (1.0, 2.0),
                     bias: float = 0.5) -> Any:
    """Put a model class module in ``code_dir`` and a pickled instance at ``model_dir/model.pkl``; return it.

    The module gets a unique name and is dropped from sys.modules again, so loading the pickle only works when
    the loader puts ``code_dir`` on sys.path, as a registered package's copied code would be.
    """
    code_dir.mkdir(parents=True, exist_ok=True)
    model_dir.mkdir(parents=True, exist_ok=True)
    name = f"tiny_{uuid.uuid4().hex[:10]}"
    path = code_dir / f"{name}.py"
    path.write_text(TINY_MODEL)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    model = module.TinyModel(weights, bias)
    (model_dir / "model.pkl").write_bytes(pickle.dumps(model))
    del sys.modules[name]
    return model


@pytest.fixture
def tiny(tmp_path: Path) -> Any:
    """``tiny(name, weights, bias, inference=...)``: a model folder and a code folder with an entry point."""

    def make(name: str = "m", weights: tuple[float, ...] = (1.0, 2.0), bias: float = 0.5,
             inference: str = "") -> tuple[Path, Path, Any]:
        code_dir, model_dir = tmp_path / name / "code", tmp_path / name / "model"
        model = write_tiny_model(code_dir, model_dir, weights, bias)
        (code_dir / "inference.py").write_text(inference)
        return model_dir, code_dir, model

    return make
