"""A real ``forgeline server`` process on 127.0.0.1 (a free port) over the test's own FORGELINE_HOME.

``server`` starts one with authentication and hands back its base URL and an admin token (made with
`forgeline tokens create` against the store, as a user would); ``start_server`` starts more (--no-auth, a
second process on the same database). Every server is stopped with SIGTERM at the end of its test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from conftest import Cli

START_SECONDS = 60.0


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningServer:
    """A started ``forgeline server``: its URL (``http://127.0.0.1:PORT``), an admin token, its process."""

    url: str
    token: str | None
    process: subprocess.Popen[str]
    log_path: Path
    cli: Cli
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        """The base URL of the versioned API."""
        return f"{self.url}/api/v1"

    def client(self, token: str | None = "admin") -> httpx.Client:
        """An HTTP client for the API; ``token``: "admin", a role name (a token of that role is made), a raw
        token, or None for no Authorization header."""
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.token_for(token)}"
        return httpx.Client(base_url=self.api, headers=headers, timeout=60)

    def token_for(self, name_or_token: str) -> str:
        """The admin token, a token of a role (created once, named after it), or ``name_or_token`` itself."""
        if name_or_token == "admin" and self.token:
            return self.token
        if name_or_token in ("viewer", "operator", "approver", "admin"):
            if name_or_token not in self.tokens:
                self.tokens[name_or_token] = create_token(self.cli, f"{name_or_token}-test", name_or_token)
            return self.tokens[name_or_token]
        return name_or_token

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send ``sig`` and wait for the process to end; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                pytest.fail(f"the server did not stop within {timeout} s of signal {sig}:\n{self.log()}")
        return int(self.process.returncode)


class StartServer(Protocol):
    """Start a server process (see the ``start_server`` fixture)."""

    def __call__(self, *args: str, auth: bool = True, env: Mapping[str, str] | None = None,
                 wait: bool = True) -> RunningServer: ...


def create_token(cli: Cli, name: str, role: str) -> str:
    """Make a token with the CLI against the store (no server needed) and return it."""
    made = cli("tokens", "create", name, "--role", role)
    assert made.returncode == 0, made
    return made.stdout.strip().splitlines()[-1]


def wait_ready(server: RunningServer) -> None:
    """Poll /api/v1/health until it answers; fail with the server's log if the process ends or time runs out."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited with {server.process.returncode} while starting:\n{server.log()}")
        try:
            if httpx.get(f"{server.api}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not answer within {START_SECONDS} s:\n{server.log()}")


@pytest.fixture
def start_server(cli: Cli, tmp_path: Path) -> Iterator[StartServer]:
    """``start_server(*args, auth=True, env=None)``: a ``forgeline server`` process on a free port."""
    started: list[RunningServer] = []
    role_tokens: dict[str, str] = {}  # one token per role for every server of the test (they share the store)

    def start(*args: str, auth: bool = True, env: Mapping[str, str] | None = None,
              wait: bool = True) -> RunningServer:
        token = create_token(cli, f"admin-{len(started)}", "admin") if auth else None
        port = free_port()
        log_path = tmp_path / f"server-{len(started)}-{port}.log"
        with open(log_path, "w") as log:
            process = cli.start("server", "--host", "127.0.0.1", "--port", str(port),
                                *([] if auth else ["--no-auth"]), *args, env=env, stdout=log, stderr=subprocess.STDOUT)
        server = RunningServer(f"http://127.0.0.1:{port}", token, process, log_path, cli, role_tokens)
        started.append(server)
        if wait:
            wait_ready(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(server.process.pid, signal.SIGKILL)
                server.process.wait(10)


@pytest.fixture
def server(start_server: StartServer) -> RunningServer:
    """A running ``forgeline server`` with authentication; ``server.url``, ``server.token`` (admin)."""
    return start_server()


def error_of(response: httpx.Response) -> Any:
    """The one-line error of a JSON error response (fails the test when the body is not one)."""
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"], body
    return body["error"]


# A pipeline for schedule and trigger tests: its step writes the parameters and TRIGGER_URI it was given.
ECHO_PIPELINE = """
    from forgeline.workflow import ExecutionVariables, ParameterString, Pipeline, ProcessingStep

    model = ParameterString("ModelType", default_value="hgb")
    out = ParameterString("Out", default_value="")
    pipeline = Pipeline(name="echo", parameters=[model, out], steps=[
        ProcessingStep(name="Echo", code="echo.py", arguments=[
            out, ExecutionVariables.PIPELINE_EXECUTION_ID, model, ExecutionVariables.TRIGGER_URI])])
"""

# echo.py writes what it was given to <Out>/<execution id>.json (nothing when Out is empty).
ECHO_SCRIPT = """
    import json, sys
    from pathlib import Path
    out, execution_id, model, uri = (sys.argv[1:] + [""] * 4)[:4]
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        Path(out, execution_id + ".json").write_text(json.dumps({"model": model, "uri": uri}))
"""
