"""SageMaker's built-in XGBoost algorithm, run locally: train on the train (and validation) channels with the
job's hyperparameters and save the booster as ``xgboost-model`` in the model dir, as the container does.

Channels hold CSV (label in the first column, no header) or libsvm files, chosen by the channel's content
type (``SM_CHANNEL_<NAME>_CONTENT_TYPE`` is not set locally, so ``text/libsvm`` files are recognised by the
``content_type`` hyperparameter or by a ``.libsvm`` suffix). Evaluation lines go to stdout like the
container's (``[3]#011train-rmse:...``), so metric definitions written for it still match.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import xgboost as xgb

NOT_PARAMETERS = {"num_round", "content_type", "csv_weights", "early_stopping_rounds"}
ALIASES = {"reg:linear": "reg:squarederror", "binary:logistic": "binary:logistic"}


def hyperparameters() -> dict[str, str]:
    """The job's hyperparameters as the container reads them: strings from hyperparameters.json."""
    path = Path(os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config"), "hyperparameters.json")
    return {k: str(v) for k, v in json.loads(path.read_text()).items()} if path.is_file() else {}


def value(text: str) -> object:
    """A hyperparameter as a number when it is one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def load_channel(folder: str, libsvm: bool) -> xgb.DMatrix:
    """Every file of a channel as one DMatrix."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SystemExit(f"channel folder {folder} has no data files")
    if libsvm or all(p.suffix == ".libsvm" for p in files):
        if len(files) > 1:
            raise SystemExit(f"libsvm channel {folder} must hold one file, found {len(files)}")
        return xgb.DMatrix(f"{files[0]}?format=libsvm")
    rows = np.vstack([np.loadtxt(p, delimiter=",", ndmin=2) for p in files])
    return xgb.DMatrix(rows[:, 1:], label=rows[:, 0])


def main() -> None:
    """Train as the built-in algorithm does and save the model."""
    given = hyperparameters()
    libsvm = "libsvm" in given.get("content_type", "")
    train = load_channel(os.environ["SM_CHANNEL_TRAIN"], libsvm)
    evals = [(train, "train")]
    if os.environ.get("SM_CHANNEL_VALIDATION"):
        evals.append((load_channel(os.environ["SM_CHANNEL_VALIDATION"], libsvm), "validation"))
    params = {k: value(v) for k, v in given.items() if k not in NOT_PARAMETERS}
    if isinstance(params.get("objective"), str):
        params["objective"] = ALIASES.get(str(params["objective"]), params["objective"])
    params.setdefault("nthread", 1)
    early = given.get("early_stopping_rounds")
    booster = xgb.train(params, train, num_boost_round=int(given.get("num_round", "10")), evals=evals,
                        early_stopping_rounds=int(early) if early else None, verbose_eval=True)
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    model_dir.mkdir(parents=True, exist_ok=True)
    with open(model_dir / "xgboost-model", "wb") as handle:
        pickle.dump(booster, handle)  # as the 1.0-1 … 1.5 containers save it, which evaluation scripts load


if __name__ == "__main__":
    main()
