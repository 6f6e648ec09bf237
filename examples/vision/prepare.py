"""Split scikit-learn's bundled 8x8 digit images into train/train.npz and test/test.npz (no download)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-size", type=int, default=1797, help="how many of the 1797 images to use")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    digits = load_digits()
    size = min(args.data_size, len(digits.target))
    # One channel of 8x8 pixels scaled to [0, 1], the layout a CNN expects: (images, channels, height, width).
    images = (digits.images[:size] / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target[:size].astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=args.test_fraction, random_state=args.seed, stratify=labels)
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        folder = Path("output") / name
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(folder / f"{name}.npz", images=x, labels=y)
    print(f"prepared {len(y_train)} training and {len(y_test)} test images of {size}")


if __name__ == "__main__":
    main()
