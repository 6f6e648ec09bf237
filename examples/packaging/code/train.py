"""Train a shipped-fine classifier for one package type in SageMaker script mode.

Hyperparameters arrive as ``--model_type gradient_boosting --model_params '{"max_depth": 3}' --feature_set full``;
the training data at ``SM_CHANNEL_TRAIN`` (train.csv). The estimator goes to ``SM_MODEL_DIR/model.joblib`` with
``meta.json`` (what inference.py needs to rebuild the features), which forgeline packs into model.tar.gz.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from features import LABEL, check_feature_set, feature_matrix, parse_record, RAW_COLUMNS

MODEL_TYPES = {
    "gradient_boosting": GradientBoostingClassifier,
    "random_forest": RandomForestClassifier,
    "logistic_regression": LogisticRegression,
}


def build(model_type: str, params: dict, seed: int):
    if model_type not in MODEL_TYPES:
        raise SystemExit(f"unknown model type {model_type!r}: use one of {', '.join(MODEL_TYPES)}")
    estimator = MODEL_TYPES[model_type]
    if "random_state" in estimator().get_params():
        params = {"random_state": seed, **params}
    if model_type == "logistic_regression":
        params = {"max_iter": 1000, **params}
    try:
        return estimator(**params)
    except TypeError as exc:
        raise SystemExit(f"{model_type} does not take these parameters {params}: {exc}") from None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_type", default="gradient_boosting")
    parser.add_argument("--model_params", default="{}", help="the estimator's parameters, as a JSON object")
    parser.add_argument("--feature_set", default="full")
    parser.add_argument("--package_type", default="")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "input/data/train"))
    args = parser.parse_args()
    check_feature_set(args.feature_set)
    try:
        params = json.loads(args.model_params or "{}")
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--model_params is not a JSON object: {exc}") from None
    if not isinstance(params, dict):
        raise SystemExit(f"--model_params must be a JSON object, got {args.model_params!r}")

    with open(Path(args.train, "train.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    records = [parse_record([r[c] for c in RAW_COLUMNS]) for r in rows]
    x, y = feature_matrix(records, args.feature_set), np.array([int(r[LABEL]) for r in rows])
    model = build(args.model_type, params, args.seed).fit(x, y)
    print(f"train_auc {roc_auc_score(y, model.predict_proba(x)[:, 1]):.4f}")
    print(f"train_rows {len(rows)}")

    Path(args.model_dir).mkdir(parents=True, exist_ok=True)
    joblib.dump(model, Path(args.model_dir, "model.joblib"))
    meta = {"package_type": args.package_type, "feature_set": args.feature_set, "model_type": args.model_type,
            "model_params": params, "training_rows": len(rows)}
    Path(args.model_dir, "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
