"""A PyTorch script-mode training script (the vision story): SM_* variables, checkpoints, metrics in the log."""
import argparse
import json
import os

import numpy as np
import torch

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--epochs", type=int)
parser.add_argument("--batch-size", type=int)
args = parser.parse_args()
torch.manual_seed(0)
data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",", ndmin=2)
x, y = torch.tensor(data[:, 1:], dtype=torch.float32), torch.tensor(data[:, 0], dtype=torch.long)
model = torch.nn.Linear(x.shape[1], 2)
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
checkpoint = "/opt/ml/checkpoints/last.pt"
start = 0
if os.path.exists(checkpoint):
    state = torch.load(checkpoint)
    model.load_state_dict(state["model"])
    start = state["epoch"] + 1
for epoch in range(start, args.epochs):
    for i in range(0, len(x), args.batch_size):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[i:i + args.batch_size]), y[i:i + args.batch_size])
        loss.backward()
        optimizer.step()
    accuracy = (model(x).argmax(1) == y).float().mean().item()
    print(f"epoch={epoch} val_acc={accuracy:.4f}", flush=True)
    torch.save({"model": model.state_dict(), "epoch": epoch}, checkpoint)
torch.save(model.state_dict(), os.path.join(os.environ["SM_MODEL_DIR"], "model.pt"))
json.dump({"accuracy": accuracy}, open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "result.json"), "w"))
