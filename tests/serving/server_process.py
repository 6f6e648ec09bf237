"""A real `forgeline serve` subprocess on 127.0.0.1, tiny registered models, and an open-loop request sender."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from forgeline.config import Settings
from forgeline.store.metadata.records import ModelPackageDraft, ModelPackageRecord
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.workflow.models import ModelApprovalStatus

START_TIMEOUT = 60.0

LINEAR = """
import json, os, time

def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as handle:
        return json.load(handle)

def predict_fn(rows, model):
    if model.get("sleep"):
        time.sleep(model["sleep"])
    if model.get("fail"):
        raise RuntimeError("the model exploded")
    # each prediction carries the number of rows of the predict_fn call it came from (micro-batching shows)
    return [[sum(float(x) for x in row) * model["scale"] + model["bias"], len(rows)] for row in rows]
"""

FEATURES = """
import json

def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    order = json.loads(body)
    if "amount" not in order:
        raise ValueError("an order needs an amount")
    return order

def predict_fn(order, model):
    return [[float(order["amount"]), float(len(order.get("items", [])))]]
"""


def register(store: SqlMetadataStore, root: Path, group: str, *, scale: float = 1.0, bias: float = 0.0,
             code: str = LINEAR, accepts_batches: bool = True, status: str = "Approved",
             content_types: Sequence[str] = (), response_types: Sequence[str] = (),
             **model: Any) -> ModelPackageRecord:
    """Register a tiny package (a JSON model and its inference code in folders under ``root``)."""
    folder = root / f"{group}-{len(list(root.glob(f'{group}-*')))}"
    (folder / "code").mkdir(parents=True)
    (folder / "model").mkdir()
    (folder / "code" / "inference.py").write_text(code)
    (folder / "model" / "model.json").write_text(json.dumps({"scale": scale, "bias": bias, **model}))
    draft = ModelPackageDraft(group=group, approval_status=ModelApprovalStatus(status),
                              model_data=str(folder / "model"), code_uri=str(folder / "code"),
                              entry_point="inference.py", content_types=list(content_types),
                              response_types=list(response_types), accepts_batches=accepts_batches)
    return store.create_model_package(draft, actor="tests")


@dataclass
class ServingServer:
    """A running `forgeline serve` process and its URL."""

    process: subprocess.Popen[str]
    url: str
    home: Path
    token: str | None = None
    output: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, home: Path, *args: str, token: str | None = None,
              env: Mapping[str, str] | None = None) -> ServingServer:
        """Start on a free port and wait for the line that names its URL."""
        process = subprocess.Popen(
            [sys.executable, "-m", "forgeline.cli.main", "serve", "--host", "127.0.0.1", "--port", "0", *args],
            env={**os.environ, "FORGELINE_HOME": str(home), **(env or {})}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        )
        assert process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        lines = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "listening on " in line:
                server = cls(process, line.rsplit("listening on ", 1)[1].strip(), home, token, lines)
                return server
        process.kill()
        raise AssertionError(f"forgeline serve did not start: {''.join(lines)}")

    def headers(self) -> dict[str, str]:
        """The Authorization header when the server wants a token."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def invoke(self, endpoint: str, body: Any, *, content_type: str = "application/json",
               headers: Mapping[str, str] | None = None, timeout: float = 30.0) -> httpx.Response:
        """POST one invocation."""
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return httpx.post(f"{self.url}/endpoints/{endpoint}/invocations", content=data, timeout=timeout,
                          headers={"content-type": content_type, **self.headers(), **(headers or {})})

    def listing(self) -> dict[str, dict[str, Any]]:
        """GET /endpoints by name."""
        response = httpx.get(f"{self.url}/endpoints", headers=self.headers(), timeout=10)
        response.raise_for_status()
        return {row["name"]: row for row in response.json()}

    def wait_serving(self, name: str, revision: int | None = None, timeout: float = 60.0,
                     model: str | None = None) -> dict[str, Any]:
        """Wait until the endpoint serves ``revision`` (default: its newest) and, if given, ``model``."""
        deadline = time.monotonic() + timeout
        row: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            row = self.listing().get(name)
            if (row and row["serving_revision"] is not None and row["status"] == "InService"
                    and (revision is None or row["serving_revision"] == revision)
                    and (model is None or any(v["model"] == model for v in row["variants"]))):
                return row
            if row and row["problem"] and revision in (None, row["revision"]) and model is None:
                raise AssertionError(f"endpoint {name} cannot be served: {row['problem']}")
            time.sleep(0.05)
        raise AssertionError(f"endpoint {name} not serving revision {revision} / {model} in {timeout} s: {row}")

    def workers(self) -> list[psutil.Process]:
        """The server's worker processes."""
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not end."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.output.append(self.process.stdout.read())
            self.process.stdout.close()


@dataclass
class LoadResult:
    """What an open-loop run got back: status code (0: no answer) and X-Forgeline-Model per request."""

    statuses: list[int]
    models: list[str]
    variants: list[str]

    @property
    def success(self) -> float:
        """Share of 200 answers."""
        return sum(1 for s in self.statuses if s == 200) / max(1, len(self.statuses))


async def _send_open_loop(url: str, body: bytes, rate: float, count: int | None, stop: Any,
                          headers: Mapping[str, str], deadline_seconds: float) -> LoadResult:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    results: list[tuple[int, str, str]] = []
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        async def one() -> None:
            try:
                response = await client.post(url, content=body, headers={"content-type": "application/json",
                                                                         **headers})
                results.append((response.status_code, response.headers.get("x-forgeline-model", ""),
                                response.headers.get("x-forgeline-variant", "")))
            except httpx.HTTPError:
                results.append((0, "", ""))

        tasks = []
        start = time.monotonic()
        index = 0
        while (count is None or index < count) and time.monotonic() - start < deadline_seconds:
            if count is None and stop():
                break
            due = start + index / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one()))
            index += 1
        await asyncio.gather(*tasks)
    return LoadResult([r[0] for r in results], [r[1] for r in results], [r[2] for r in results])


def open_loop(url: str, body: Any, rate: float, *, count: int | None = None, stop: Any = None,
              headers: Mapping[str, str] | None = None, deadline_seconds: float = 60.0) -> LoadResult:
    """Send requests at ``rate`` per second (on schedule, not after answers) until ``count`` or ``stop()``."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return asyncio.run(_send_open_loop(url, data, rate, count, stop or (lambda: False), headers or {},
                                       deadline_seconds))


def in_thread(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``function`` in a thread; returns a handle whose ``result()`` waits for it."""
    from concurrent.futures import ThreadPoolExecutor

    executor = ThreadPoolExecutor(max_workers=1)
    future = executor.submit(function, *args, **kwargs)
    executor.shutdown(wait=False)
    return future


def settings_for(home: Path) -> Settings:
    """The settings a server with FORGELINE_HOME=home uses."""
    return Settings.from_env({"FORGELINE_HOME": str(home)})
