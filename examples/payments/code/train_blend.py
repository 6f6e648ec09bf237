"""Train the scikit-learn half of a market's model and package it with the XGBoost half as one model.

Reads SM_CHANNEL_TRAIN/train.csv and SM_CHANNEL_XGBOOST/model.tar.gz (the XGBoost step's model); writes
SM_MODEL_DIR/hgb.joblib, xgboost.json and blend.json (how model_inference.py averages the two).
"""

from __future__ import annotations

import argparse
import json
import os
import tarfile
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from prepare import LABEL


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max_iter", type=int, default=200)
    parser.add_argument("--xgboost_weight", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    model_dir = Path(os.environ["SM_MODEL_DIR"])
    path = Path(os.environ["SM_CHANNEL_TRAIN"]) / "train.csv"
    header = path.open().readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    x, y = data[:, :-1], data[:, header.index(LABEL)]
    hgb = HistGradientBoostingClassifier(max_iter=args.max_iter, random_state=args.seed).fit(x, y)
    joblib.dump(hgb, model_dir / "hgb.joblib")
    with tarfile.open(Path(os.environ["SM_CHANNEL_XGBOOST"]) / "model.tar.gz") as archive:
        archive.extract("xgboost.json", model_dir, filter="data")
    (model_dir / "blend.json").write_text(json.dumps({"xgboost_weight": args.xgboost_weight,
                                                      "features": len(header) - 1}))
    print(f"hgb: {len(y)} rows, {hgb.n_iter_} iterations; blended with xgboost at weight {args.xgboost_weight}")


if __name__ == "__main__":
    main()
