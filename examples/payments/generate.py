# examples/payments/generate.py
"""A week of labelled payment orders per market: train.jsonl (this week's orders) and test.jsonl (held out).

    python examples/payments/generate.py --out data/payments --week 1
    python examples/payments/generate.py --out data/payments --week 2 --broken-labels 0.6   # the shifted week

Each line is an order (nested customer, payment, shipping, device, basket items) plus its label ``defaulted``.
``--broken-labels`` mixes up that share of the week's training labels, as a label feed joined to the wrong orders
would: the model trained on them is worse, and the held-out orders (labelled correctly) show it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "code"))
from orders import features, fraud_label, orders  # noqa: E402

MARKETS = ("DE", "FR")


def labelled(count: int, seed: int, market: str) -> list[dict]:
    """``count`` orders of ``market`` with their ``defaulted`` label."""
    rng = random.Random(seed + 1)
    return [{**order, "defaulted": fraud_label(features(order), rng)} for order in orders(count, seed, market)]


def break_labels(rows: list[dict], share: float, seed: int) -> None:
    """Give ``share`` of the rows the label of another row (shuffled among them)."""
    rng = random.Random(seed)
    chosen = rng.sample(range(len(rows)), int(share * len(rows)))
    labels = [rows[i]["defaulted"] for i in chosen]
    rng.shuffle(labels)
    for index, label in zip(chosen, labels):
        rows[index]["defaulted"] = label


def write_week(out: Path, week: int, orders_per_market: int, test_share: float, broken: float,
               markets: tuple[str, ...] = MARKETS) -> Path:
    """Write ``<out>/week-<n>/train.jsonl`` and ``test.jsonl``; returns the week's folder."""
    folder = out / f"week-{week}"
    folder.mkdir(parents=True, exist_ok=True)
    train, test = [], []
    for number, market in enumerate(markets):
        seed = 1000 * week + 10 * number
        rows = labelled(orders_per_market, seed, market)
        cut = int(len(rows) * (1 - test_share))
        week_rows = rows[:cut]
        if broken:
            break_labels(week_rows, broken, seed)
        train += week_rows
        test += rows[cut:]
    for name, rows in (("train.jsonl", train), ("test.jsonl", test)):
        (folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/payments")
    parser.add_argument("--week", type=int, default=1)
    parser.add_argument("--orders", type=int, default=20_000, help="orders per market")
    parser.add_argument("--test-share", type=float, default=0.25)
    parser.add_argument("--broken-labels", type=float, default=0.0)
    parser.add_argument("--markets", default=",".join(MARKETS))
    args = parser.parse_args(argv)
    markets = tuple(m.strip().upper() for m in args.markets.split(",") if m.strip())
    folder = write_week(Path(args.out), args.week, args.orders, args.test_share, args.broken_labels, markets)
    print(f"week {args.week}: {args.orders} orders per market ({', '.join(markets)}) in {folder}")


if __name__ == "__main__":
    main()
