"""Live figures of the endpoints, asked of the running ``forgeline serve`` (FORGELINE_SERVING_URL).

The serving process counts its own requests (``serving/recent_traffic.py``) and lists them with its endpoints at
``GET /endpoints``; the API passes them on beside each endpoint's configuration as ``live``: what is served
(status, revision, variants with weights, models, workers, queue) and the last minute's traffic (requests per
second, errors, p50/p99 latency in ms), in total and by variant. When the serving process cannot be asked,
``live`` is ``{"error": "<why>"}``.
"""

from __future__ import annotations

from typing import Any

import httpx

from forgeline.config import SERVING_URL_ENV, ServerConnection
from forgeline.errors import ConfigurationError

TIMEOUT_SECONDS = 3.0


def serving_rows() -> tuple[dict[str, dict[str, Any]], str | None]:
    """Every endpoint the serving process lists, by name, or an empty mapping and why there is none."""
    try:
        connection = ServerConnection.serving_from_env()
    except ConfigurationError as exc:
        return {}, str(exc)
    if connection is None:
        return {}, (f"no live figures: set {SERVING_URL_ENV} to the address `forgeline serve` prints "
                    "before starting `forgeline server`")
    headers = {"Authorization": f"Bearer {connection.token}"} if connection.token else {}
    try:
        response = httpx.get(f"{connection.url}/endpoints", headers=headers, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return {}, f"cannot reach forgeline serve at {connection.url}: {exc or type(exc).__name__}"
    if response.status_code != 200:
        return {}, f"forgeline serve at {connection.url} answered {response.status_code} to GET /endpoints"
    try:
        return {row["name"]: row for row in response.json()}, None
    except (ValueError, KeyError, TypeError):
        return {}, f"forgeline serve at {connection.url} answered GET /endpoints with no endpoint list"


def with_live(endpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The endpoints (JSON forms of their records), each with its ``live`` figures from the serving process."""
    rows, problem = serving_rows()
    for endpoint in endpoints:
        row = rows.get(endpoint["name"])
        if row is not None:
            endpoint["live"] = {key: value for key, value in row.items() if key != "name"}
        else:
            endpoint["live"] = {"error": problem or f"forgeline serve does not serve {endpoint['name']!r} (yet)"}
    return endpoints
