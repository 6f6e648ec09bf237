"""The abalone example's evaluation: load the built-in XGBoost model from model.tar.gz, write MSE."""
import json
import pathlib
import pickle
import tarfile

import numpy as np
import xgboost

with tarfile.open("/opt/ml/processing/model/model.tar.gz") as tar:
    tar.extractall(path=".", filter="data")
model = pickle.load(open("xgboost-model", "rb"))
test = np.loadtxt("/opt/ml/processing/test/test.csv", delimiter=",", ndmin=2)
predictions = model.predict(xgboost.DMatrix(test[:, 1:]))
mse = float(np.mean((test[:, 0] - predictions) ** 2))
pathlib.Path("/opt/ml/processing/evaluation").mkdir(parents=True, exist_ok=True)
json.dump({"regression_metrics": {"mse": {"value": mse, "standard_deviation": float(np.std(test[:, 0] - predictions))}}},
          open("/opt/ml/processing/evaluation/evaluation.json", "w"))
print("mse", mse)
