"""Data capture: a share of request/response pairs appended as JSON Lines under the artifact store.

The request path only puts a record on a queue; a writer thread gathers records for up to a second and writes
them as one new file per endpoint and flush (``data-capture/<endpoint>/<YYYY>/<MM>/<DD>/<HH>/<time>-<id>.jsonl``),
which works on every artifact store, object stores included. A full queue drops records rather than slow
requests down.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import secrets
import threading
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from forgeline.store.artifacts import ArtifactStore

log = logging.getLogger("forgeline.serving")

CAPTURE_FOLDER = "data-capture"
FLUSH_SECONDS = 1.0
QUEUE_LIMIT = 100_000
_STOP = object()


class DataCapture:
    """A queue of captured pairs and the thread that writes them out."""

    def __init__(self, artifacts: ArtifactStore) -> None:
        self.artifacts = artifacts
        self.queue: queue.Queue[Any] = queue.Queue(QUEUE_LIMIT)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="forgeline-capture", daemon=True)
        self._thread.start()

    def record(self, endpoint: str, variant: str, model: str, request: tuple[str, str, bytes],
               reply: tuple[int, str, bytes], latency: float) -> None:
        """Queue one pair (cheap: the encoding happens on the writer thread)."""
        try:
            self.queue.put_nowait((endpoint, variant, model, request, reply, latency, datetime.now(UTC)))
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        self.queue.put(_STOP)
        self._thread.join(timeout=30)

    def folder(self, endpoint: str) -> str:
        """Where an endpoint's captured pairs go."""
        return self.artifacts.uri(CAPTURE_FOLDER, endpoint)

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: dict[str, list[str]] = defaultdict(list)
            try:
                item = self.queue.get(timeout=FLUSH_SECONDS)
            except queue.Empty:
                continue
            deadline = datetime.now(UTC).timestamp() + FLUSH_SECONDS
            while True:
                if item is _STOP:
                    stop = True
                    break
                batch[item[0]].append(_line(*item))
                remaining = deadline - datetime.now(UTC).timestamp()
                try:
                    item = self.queue.get(timeout=max(remaining, 0.0)) if remaining > 0 else self.queue.get_nowait()
                except queue.Empty:
                    break
            for endpoint, lines in batch.items():
                self._write(endpoint, lines)

    def _write(self, endpoint: str, lines: list[str]) -> None:
        now = datetime.now(UTC)
        name = f"{now:%H%M%S}-{now.microsecond:06d}-{secrets.token_hex(3)}.jsonl"
        uri = self.artifacts.uri(CAPTURE_FOLDER, endpoint, f"{now:%Y/%m/%d/%H}", name)
        try:
            self.artifacts.write_bytes(uri, "".join(lines).encode())
        except Exception:  # noqa: BLE001 - capture must never take the server down; the log says what was lost
            log.exception("data capture of endpoint %s: could not write %d records to %s", endpoint, len(lines), uri)


def _line(endpoint: str, variant: str, model: str, request: tuple[str, str, bytes], reply: tuple[int, str, bytes],
          latency: float, at: datetime) -> str:
    return json.dumps({
        "time": at.isoformat(), "endpoint": endpoint, "variant": variant, "model": model,
        "latency_ms": round(latency * 1000, 3), "status": reply[0],
        "request": {"content_type": request[0], "accept": request[1], **_payload(request[2])},
        "response": {"content_type": reply[1], **_payload(reply[2])},
    }) + "\n"


def _payload(body: bytes) -> dict[str, str]:
    try:
        return {"data": body.decode("utf-8"), "encoding": "UTF-8"}
    except UnicodeDecodeError:
        return {"data": base64.b64encode(body).decode("ascii"), "encoding": "BASE64"}
