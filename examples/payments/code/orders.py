"""Payment orders as a shop posts them (nested JSON), their 34 model features, and a synthetic default label.

``features(order)`` is the one feature code: the payments pipeline's Prepare step computes the training data with
it, and the endpoint's first stage (``features_inference.py``) computes a request's features with it, unchanged.
The serving benchmark (``benchmarks/serving_model.py``) uses the same generator and features.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

FEATURE_COUNT = 34
COUNTRIES = ("DE", "FR", "NL", "AT", "PL", "IT", "ES", "US", "NG", "BR")
FREE_MAIL = frozenset({"gmail.com", "yahoo.com", "outlook.com", "gmx.de", "web.de", "mail.ru"})
DOMAINS = ("gmail.com", "gmx.de", "web.de", "firma.de", "example.fr", "outlook.com", "mail.ru", "shop.nl")
METHODS = {"card": 0, "paypal": 1, "invoice": 2, "wallet": 3}
BRANDS = {"visa": 0, "mastercard": 1, "amex": 2, "maestro": 3}
SHIPPING = {"standard": 0, "express": 1, "pickup": 2, "same_day": 3}
CATEGORIES = ("electronics", "fashion", "home", "toys", "grocery", "gift_cards")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def make_order(rng: random.Random, index: int = 0, market: str | None = None) -> dict[str, Any]:
    """One payment order as a shop would post it: customer, payment, shipping, device and line items.

    ``market`` (a country code such as "DE") fixes the customer's country; otherwise it is drawn.
    """
    home = market or rng.choice(COUNTRIES[:7])
    abroad = rng.random() < 0.15
    items = [{"sku": f"sku-{rng.randrange(10**6):06d}", "category": rng.choice(CATEGORIES),
              "price": round(rng.lognormvariate(3.3, 1.0), 2), "quantity": rng.choice((1, 1, 1, 2, 3))}
             for _ in range(rng.choice((1, 1, 2, 3, 5, 8)))]
    created = EPOCH + timedelta(seconds=rng.randrange(330 * 86400))
    return {
        "order_id": f"o-{index:08d}",
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "currency": "EUR",
        "amount": round(sum(item["price"] * item["quantity"] for item in items), 2),
        "customer": {"id": f"c-{rng.randrange(10**7):07d}", "account_age_days": int(rng.expovariate(1 / 500)),
                     "orders_last_30d": rng.choice((0, 0, 1, 1, 2, 4, 9)), "orders_total": int(rng.expovariate(1 / 20)),
                     "country": home, "email_domain": rng.choice(DOMAINS), "is_guest": rng.random() < 0.2,
                     "chargebacks": rng.choice((0,) * 12 + (1, 2)), "verified_phone": rng.random() < 0.7},
        "payment": {"method": rng.choice(tuple(METHODS)), "installments": rng.choice((1, 1, 1, 3, 6)),
                    "card": {"brand": rng.choice(tuple(BRANDS)),
                             "bin_country": rng.choice(COUNTRIES) if abroad else home,
                             "three_ds": rng.random() < 0.6, "expiry_months": rng.randrange(1, 60),
                             "attempts": rng.choice((1, 1, 1, 2, 3, 6))}},
        "shipping": {"country": rng.choice(COUNTRIES) if rng.random() < 0.1 else home,
                     "method": rng.choice(tuple(SHIPPING)), "address_age_days": int(rng.expovariate(1 / 300)),
                     "same_as_billing": rng.random() < 0.8},
        "device": {"ip_country": rng.choice(COUNTRIES) if abroad or rng.random() < 0.05 else home,
                   "is_mobile": rng.random() < 0.55, "session_seconds": int(rng.expovariate(1 / 240)),
                   "proxy": rng.random() < 0.04, "new_device": rng.random() < 0.25},
        "items": items,
    }


def features(order: dict[str, Any]) -> list[float]:
    """The 34 model inputs of one order, in a fixed order."""
    customer, payment, shipping, device = order["customer"], order["payment"], order["shipping"], order["device"]
    card = payment.get("card") or {}
    items = order.get("items") or []
    created = datetime.strptime(order["created_at"], "%Y-%m-%dT%H:%M:%SZ")
    amount = float(order["amount"])
    prices = [float(item["price"]) for item in items] or [0.0]
    value = sum(float(item["price"]) * item["quantity"] for item in items) or 1.0
    electronics = sum(float(item["price"]) * item["quantity"] for item in items
                      if item["category"] in ("electronics", "gift_cards"))
    return [
        amount, math.log1p(amount), created.hour, created.weekday(),
        customer["account_age_days"], customer["orders_last_30d"], customer["orders_total"],
        float(customer["is_guest"]), customer["chargebacks"], float(customer["verified_phone"]),
        float(customer["email_domain"] in FREE_MAIL),
        METHODS.get(payment["method"], -1), payment["installments"], BRANDS.get(card.get("brand", ""), -1),
        float(card.get("three_ds", False)), card.get("expiry_months", -1), card.get("attempts", 0),
        float(card.get("bin_country", customer["country"]) != customer["country"]),
        float(shipping["country"] != customer["country"]), SHIPPING.get(shipping["method"], -1),
        shipping["address_age_days"], float(shipping["same_as_billing"]),
        float(device["ip_country"] != shipping["country"]), float(device["is_mobile"]), device["session_seconds"],
        float(device["proxy"]), float(device["new_device"]),
        len(items), sum(item["quantity"] for item in items), max(prices), sum(prices) / len(prices),
        electronics / value, len({item["category"] for item in items}),
        amount / (customer["orders_total"] + 1),
    ]


def fraud_label(row: list[float], rng: random.Random) -> int:
    """A synthetic ground truth: risk grows with mismatched countries, new accounts, retries, proxies, value."""
    score = (-4.0 + 1.4 * row[17] + 1.1 * row[18] + 1.3 * row[22] + 0.9 * row[7] + 0.8 * row[8]
             + 0.5 * (row[16] - 1) + 1.6 * row[25] + 0.7 * row[26] - 0.9 * row[14] + 1.2 * row[31]
             + 0.4 * math.log1p(row[0]) / 3 - 0.6 * min(row[4], 1000) / 1000 + rng.gauss(0, 0.5))
    return int(rng.random() < 1 / (1 + math.exp(-score)))


def orders(count: int, seed: int = 7, market: str | None = None) -> list[dict[str, Any]]:
    """``count`` reproducible orders (all of one market when ``market`` is given)."""
    rng = random.Random(seed)
    return [make_order(rng, index, market) for index in range(count)]
