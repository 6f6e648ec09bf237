"""A real `forgeline serve` subprocess on 127.0.0.1, tiny registered models, and an open-loop request sender."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from conftest import Cli
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
        process = Cli({**os.environ, "FORGELINE_HOME": str(home)}).start(
            "serve", "--host", "127.0.0.1", "--port", "0", *args, cwd=os.getcwd(), env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
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
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.output.append(self.process.stdout.read())
            self.process.stdout.close()


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status (0 when none came, with the reason as body), headers (lower-case) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class LoadResult:
    """Every answer of a run, in the order the requests were due."""

    answers: list[Answer]

    @property
    def statuses(self) -> list[int]:
        """Status per request (0: no answer)."""
        return [a.status for a in self.answers]

    @property
    def models(self) -> list[str]:
        """X-Forgeline-Model per request, or why there was no answer."""
        return [a.headers.get("x-forgeline-model", a.body.decode(errors="replace")) for a in self.answers]

    @property
    def success(self) -> float:
        """Share of 200 answers."""
        return sum(1 for s in self.statuses if s == 200) / max(1, len(self.statuses))


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> Answer:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)}
    body = await reader.readexactly(int(fields.get("content-length", "0")))
    return Answer(int(lines[0].split()[1]), fields, body)


def _requests(url: str, bodies: Sequence[bytes], headers: Mapping[str, str]) -> tuple[httpx.URL, list[bytes]]:
    parts = httpx.URL(url)
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return parts, [(f"POST {parts.raw_path.decode()} HTTP/1.1\r\nhost: {parts.host}\r\n"
                    f"content-type: application/json\r\ncontent-length: {len(body)}\r\n{extra}\r\n").encode()
                   + body for body in bodies]


async def _connection(parts: httpx.URL, requests: Sequence[bytes], due: asyncio.Queue[int | None],
                      results: dict[int, Answer]) -> None:
    """A keep-alive connection taking due request indexes off the queue until it gets None."""
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while (index := await due.get()) is not None:
        for _ in range(2):  # a kept-alive connection the server closed meanwhile: one fresh try
            try:
                if stream is None:
                    stream = await asyncio.open_connection(parts.host, parts.port)
                results[index] = await asyncio.wait_for(_exchange(*stream, requests[index % len(requests)]), 30.0)
                break
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                if stream is not None:
                    stream[1].close()
                stream = None
                results[index] = Answer(0, {}, f"{type(exc).__name__}: {exc}".encode())
    if stream is not None:
        stream[1].close()


async def _run(url: str, bodies: Sequence[bytes], headers: Mapping[str, str], connections: int,
               rate: float | None, count: int, stop: Any, deadline_seconds: float) -> LoadResult:
    parts, requests = _requests(url, bodies, headers)
    due: asyncio.Queue[int | None] = asyncio.Queue()
    results: dict[int, Answer] = {}
    pool = [asyncio.ensure_future(_connection(parts, requests, due, results)) for _ in range(connections)]
    start = time.monotonic()
    index = 0
    while index < count and time.monotonic() - start < deadline_seconds and not stop():
        if rate is not None:
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        due.put_nowait(index)
        index += 1
    stopped = stop()
    while stopped and not due.empty():  # told to stop: what no connection has taken yet is not sent at all
        due.get_nowait()
    for _ in pool:
        due.put_nowait(None)
    await asyncio.gather(*pool)
    if stopped:
        return LoadResult([results[i] for i in sorted(results)])
    return LoadResult([results.get(i, Answer(0, {}, b"never sent")) for i in range(index)])


def _encoded(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def open_loop(url: str, body: Any, rate: float, *, count: int | None = None, stop: Any = None,
              headers: Mapping[str, str] | None = None, deadline_seconds: float = 60.0,
              connections: int = 48) -> LoadResult:
    """Send requests at ``rate`` per second (on schedule, not after answers) until ``count`` or ``stop()``."""
    return asyncio.run(_run(url, [_encoded(body)], headers or {}, connections, rate,
                            count if count is not None else 10**9, stop or (lambda: False), deadline_seconds))


def send_concurrently(url: str, bodies: Sequence[Any], concurrency: int = 32,
                      headers: Mapping[str, str] | None = None) -> list[Answer]:
    """POST every body with ``concurrency`` requests in flight; the answers in order."""
    result = asyncio.run(_run(url, [_encoded(b) for b in bodies], headers or {}, concurrency, None, len(bodies),
                              lambda: False, 300.0))
    return result.answers


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

