"""Train the XGBoost half of a market's model (run in its own environment: requirements-xgboost.txt).

Reads SM_CHANNEL_TRAIN/train.csv, writes SM_MODEL_DIR/xgboost.json (XGBoost's own portable format).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import xgboost

from prepare import LABEL


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n_estimators", type=int, default=200)
    parser.add_argument("--max_depth", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    path = Path(os.environ["SM_CHANNEL_TRAIN"]) / "train.csv"
    header = path.open().readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    x, y = data[:, :-1], data[:, header.index(LABEL)]
    model = xgboost.XGBClassifier(n_estimators=args.n_estimators, max_depth=args.max_depth, learning_rate=0.1,
                                  n_jobs=1, random_state=args.seed, eval_metric="auc")
    model.fit(x, y)
    model.save_model(Path(os.environ["SM_MODEL_DIR"]) / "xgboost.json")
    print(f"xgboost {xgboost.__version__}: {len(y)} rows, {args.n_estimators} trees of depth {args.max_depth}")


if __name__ == "__main__":
    main()
