"""Train the digits CNN in SageMaker script mode; checkpoint every epoch and resume from the last checkpoint.

Hyperparameters arrive as --name value; data, model, output and checkpoint folders as SM_* variables.
Prints `training_ap <v>` and `testing_ap <v>` each epoch, which the step's metric definitions pick up.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from torch import nn

from model import DigitsCNN, load_split, score


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_epochs", type=int, default=5)
    parser.add_argument("--learning_rate", type=float, default=0.01)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "input/data/train"))
    parser.add_argument("--test", default=os.environ.get("SM_CHANNEL_TEST", "input/data/test"))
    parser.add_argument("--checkpoint-dir", default=os.environ.get("SM_CHECKPOINT_DIR", "checkpoints"))
    parser.add_argument("--output-data-dir", default=os.environ.get("SM_OUTPUT_DATA_DIR", "output/data"))
    return parser.parse_args()


def save_checkpoint(path: Path, state: dict) -> None:
    # Written aside and renamed into place: a checkpoint is never seen (or uploaded) half written.
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    x_train, y_train = load_split(os.path.join(args.train, "train.npz"))
    x_test, y_test = load_split(os.path.join(args.test, "test.npz"))

    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    checkpoint = Path(args.checkpoint_dir) / "checkpoint.pt"
    history: list[dict] = []
    first_epoch = 1
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = state["history"]
        first_epoch = state["epoch"] + 1
        print(f"resuming from checkpoint after epoch {state['epoch']}", flush=True)

    for epoch in range(first_epoch, args.num_epochs + 1):
        print(f"epoch {epoch}/{args.num_epochs}", flush=True)
        model.train()
        order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(args.seed + epoch))
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
        train_scores, test_scores = score(model, x_train, y_train), score(model, x_test, y_test)
        print(f"training_ap {train_scores['ap']:.4f}", flush=True)
        print(f"testing_ap {test_scores['ap']:.4f}", flush=True)
        print(f"testing_accuracy {test_scores['accuracy']:.4f}", flush=True)
        history.append({"epoch": epoch, "train": train_scores, "test": test_scores})
        save_checkpoint(checkpoint, {"epoch": epoch, "model": model.state_dict(),
                                     "optimizer": optimizer.state_dict(), "history": history})

    Path(args.model_dir).mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), Path(args.model_dir) / "model.pt")
    Path(args.output_data_dir).mkdir(parents=True, exist_ok=True)
    Path(args.output_data_dir, "history.json").write_text(json.dumps(history, indent=2))


if __name__ == "__main__":
    main()
