"""The abalone example's preprocessing, as SageMaker runs it: fixed /opt/ml/processing paths."""
import glob

import numpy as np

rows = []
for path in sorted(glob.glob("/opt/ml/processing/input/*.csv")):
    for line in open(path):
        parts = line.strip().split(",")
        sex = [1.0 if parts[0] == s else 0.0 for s in "MFI"]
        rows.append([float(parts[-1]), *sex, *map(float, parts[1:-1])])
data = np.array(rows)
np.random.default_rng(7).shuffle(data)
n = len(data)
train, validation, test = data[: int(0.7 * n)], data[int(0.7 * n): int(0.85 * n)], data[int(0.85 * n):]
for name, part in (("train", train), ("validation", validation), ("test", test)):
    np.savetxt(f"/opt/ml/processing/{name}/{name}.csv", part, delimiter=",", fmt="%.6f")
print(f"split {n} rows")
