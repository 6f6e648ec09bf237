"""The HTTP API as a plain ASGI application: invocations, ping, the endpoint listing (with the last minute's
traffic: requests per second, errors, p50/p99 latency) and Prometheus metrics.

``POST /endpoints/{name}/invocations`` picks a variant (by weight, or the one ``X-Forgeline-Variant`` pins),
queues the request for that variant's workers and answers with their reply, naming the variant and the models in
``X-Forgeline-Variant`` and ``X-Forgeline-Model``. Every failure is a JSON body with the endpoint, variant and
stage; tracebacks stay in the endpoint's log.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from forgeline.serving.capture import DataCapture
from forgeline.serving.manager import EndpointManager
from forgeline.serving.metrics import CONTENT_TYPE as METRICS_TYPE
from forgeline.serving.metrics import ServingMetrics

log = logging.getLogger("forgeline.serving")

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's limit for real-time invocations
PREFIX, SUFFIX = "/endpoints/", "/invocations"
JSON_TYPE = b"application/json"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ServingApp:
    """Routes requests to endpoint variants; one instance per server."""

    def __init__(self, manager: EndpointManager, metrics: ServingMetrics, capture: DataCapture,
                 tokens: Iterable[str] = (), max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.manager = manager
        self.metrics = metrics
        self.capture = capture
        self.tokens = [token.encode() for token in tokens]
        self.max_body_bytes = max_body_bytes
        self._follow: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Endpoints come up in the background: the server answers (503 for what is not ready) at once.
                self._starting = asyncio.ensure_future(self._start())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in (self._starting, self._follow):
                    if task is not None:
                        task.cancel()
                await self.manager.stop()
                await asyncio.to_thread(self.capture.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self) -> None:
        try:
            await self.manager.start()
        except Exception:  # noqa: BLE001 - the follow loop tries again
            log.exception("could not load the endpoints from the metadata store")
        self._follow = asyncio.ensure_future(self.manager.run())

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/ping":
            await _respond(send, 200, b'{"status": "Healthy"}')
            return
        headers = dict(scope["headers"])
        if self.tokens and not self._authorised(headers.get(b"authorization", b"")):
            await _respond(send, 401, _error(401, "missing or invalid bearer token: send 'Authorization: Bearer "
                                                  "<token>' with a token of the server's token file"),
                           extra=[(b"www-authenticate", b"Bearer")])
            return
        if path.startswith(PREFIX) and path.endswith(SUFFIX):
            if method != "POST":
                await _respond(send, 405, _error(405, "invoke an endpoint with POST"), extra=[(b"allow", b"POST")])
                return
            await self._invoke(path[len(PREFIX):-len(SUFFIX)], headers, scope, receive, send)
        elif path in ("/endpoints", "/endpoints/") and method == "GET":
            await _respond(send, 200, json.dumps(self._listing()).encode())
        elif path == "/metrics" and method == "GET":
            body = await asyncio.to_thread(self.metrics.render)
            await _respond(send, 200, body, content_type=METRICS_TYPE.encode())
        else:
            await _respond(send, 404, _error(404, f"no route {method} {path}: invoke POST "
                                                  "/endpoints/<name>/invocations"))

    def _authorised(self, header: bytes) -> bool:
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return False
        given = token.strip()
        return any(hmac.compare_digest(given, known) for known in self.tokens)

    async def _invoke(self, name: str, headers: dict[bytes, bytes], scope: Scope, receive: Receive,
                      send: Send) -> None:
        started = time.perf_counter()
        if name not in self.manager.endpoints:
            await self._not_served(name, send, started)
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._fail(send, name, "", 413, f"the body has {int(length)} bytes; the limit is "
                                                  f"{self.max_body_bytes}", started)
            return
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            await self._fail(send, name, "", 413, f"the body is larger than the limit of {self.max_body_bytes} "
                                                  "bytes", started)
            return
        # Looked up after the body has arrived, with no await until the request is queued: a swap in between
        # would otherwise hand it to workers that are already stopping.
        runtime = self.manager.endpoints.get(name)
        if runtime is None:
            await self._not_served(name, send, started)
            return
        pinned = headers.get(b"x-forgeline-variant")
        variant = runtime.choose(None if pinned is None else pinned.decode("latin-1"))
        if variant is None:
            names = ", ".join(v.name for v in runtime.variants)
            await self._fail(send, name, pinned.decode("latin-1") if pinned else "", 400,
                             f"X-Forgeline-Variant names no variant of this endpoint (variants: {names})", started)
            return
        request = (headers.get(b"content-type", JSON_TYPE).decode("latin-1"),
                   headers.get(b"accept", b"").decode("latin-1"), body)
        reply = await variant.pool.submit(request)
        newer = self.manager.endpoints.get(name)
        if reply[0] == 503 and newer is not None and newer is not runtime:
            runtime = newer  # swapped while this request waited: the new revision answers
            variant = runtime.choose(variant.name) or runtime.variants[0]
            reply = await variant.pool.submit(request)
        status, content_type, output, stage, message = reply
        if status != 200:
            stage_name = variant.model.split(",")[stage] if stage is not None else None
            await self._fail(send, name, variant.name, status, message or "failed", started, stage, stage_name,
                             model=variant.model)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", content_type.encode("latin-1")), (b"content-length", str(len(output)).encode()),
            (b"x-forgeline-variant", variant.name.encode()), (b"x-forgeline-model", variant.model.encode())]})
        await send({"type": "http.response.body", "body": output})
        elapsed = time.perf_counter() - started
        self.metrics.observe(name, variant.name, 200, elapsed)
        if runtime.config.capture and random.random() < runtime.config.capture:
            self.capture.record(name, variant.name, variant.model, request, (200, content_type, output), elapsed)

    async def _not_served(self, name: str, send: Send, started: float) -> None:
        record = self.manager.records.get(name)
        if record is None:
            known = ", ".join(sorted(self.manager.records)) or "none"
            await self._fail(send, name, "", 404, f"no endpoint {name!r} (endpoints: {known})", started)
            return
        problem = self.manager.problems.get(name)
        message = (f"endpoint {name!r} cannot be served: {problem}" if problem
                   else f"endpoint {name!r} is {record.status.value}: its workers are starting; retry shortly")
        await self._fail(send, name, "", 503, message, started)

    async def _fail(self, send: Send, endpoint: str, variant: str, status: int, message: str, started: float,
                    stage: int | None = None, stage_name: str | None = None, model: str | None = None) -> None:
        document: dict[str, Any] = {"error": message, "status": status, "endpoint": endpoint,
                                    "variant": variant or None, "stage": stage, "model": stage_name}
        extra = [(b"x-forgeline-variant", variant.encode())] if variant else []
        if model:
            extra.append((b"x-forgeline-model", model.encode()))
        await _respond(send, status, json.dumps(document).encode(), extra=extra)
        self.metrics.observe(endpoint if endpoint in self.manager.records else "", variant, status,
                             time.perf_counter() - started)

    def _listing(self) -> list[dict[str, Any]]:
        rows = []
        for name, record in sorted(self.manager.records.items()):
            runtime = self.manager.endpoints.get(name)
            traffic = self.metrics.recent.summary(name, [v.name for v in runtime.variants] if runtime else ())
            rows.append({
                "name": name, "revision": record.revision,
                "serving_revision": runtime.revision if runtime else None,
                "status": "InService" if runtime and runtime.revision == record.revision else record.status.value,
                "problem": self.manager.problems.get(name),
                "variants": [{"name": v.name, "weight": v.weight, "model": v.model,
                              "workers": sum(1 for w in v.pool.workers if w.ready), "queue": len(v.pool.queue),
                              "traffic": traffic["variants"][v.name]}
                             for v in (runtime.variants if runtime else [])],
                "traffic": {key: value for key, value in traffic.items() if key != "variants"},
            })
        return rows


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body if len(body) <= limit else None
    chunks = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> bytes:
    return json.dumps({"error": message, "status": status}).encode()


async def _respond(send: Send, status: int, body: bytes, *, content_type: bytes = JSON_TYPE,
                   extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
