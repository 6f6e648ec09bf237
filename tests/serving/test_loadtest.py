"""The open-loop load generator against a real HTTP server on 127.0.0.1 whose behaviour each test scripts.

Every bound asserted here is caused by the server (a known delay, a known number of failures), never by how fast
this machine is: counts, orderings and lower bounds only.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forgeline.cli.endpoints_loadtest import COLUMNS, format_table
from forgeline.errors import LoadTestError
from forgeline.serving.loadtest import LoadTest, RateResult

HEADER = "rate  sent    ok %     p50 ms  p99 ms  p99.9 ms"


class ScriptedServer:
    """An HTTP/1.1 keep-alive server in a thread; the path picks the behaviour:

    ``/ok``; ``/delay/<ms>`` (each request waits, concurrently); ``/serial/<ms>`` (one request at a time, so a
    backlog forms); ``/fail-every/<n>`` (every n-th answers 500); ``/hang-every/<n>`` (every n-th never
    answers); ``/drop-second`` (closes a connection, unanswered, when it carries a second request);
    ``/chunked`` and ``/until-close`` (other ways to end a body); ``/endpoints/risk-de/invocations``; anything
    else 404.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.received: Counter[str] = Counter()
        self.bodies: list[tuple[bytes, str]] = []
        self.in_flight = self.max_in_flight = self.dropped = 0
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._started.wait(30), "the test server did not start"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.lock = asyncio.Lock()
        self.server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self._started.set()
        self.loop.run_forever()

    def stop(self) -> None:
        if self.loop.is_closed():
            return

        def shutdown() -> None:
            self.server.close()
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.call_later(0.05, self.loop.stop)

        self.loop.call_soon_threadsafe(shutdown)
        self._thread.join(30)
        self.loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received[path] += 1
                if path == "/drop-second" and served:
                    self.dropped += 1
                    return
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    status = await self._behave(path, self.received[path], body, headers)
                finally:
                    self.in_flight -= 1
                payload = b'{"ok": true}'
                if path == "/chunked":
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"ok\"\r\n"
                                 b"3\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n")
                    await writer.drain()
                    served += 1
                    continue
                if path == "/until-close":  # HTTP/1.0 style: no length, the end of the body is the end of the connection
                    writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + payload)
                    await writer.drain()
                    return
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\n"
                             "Content-Type: application/json\r\n\r\n".encode() + payload)
                await writer.drain()
                served += 1
        finally:
            writer.close()

    async def _behave(self, path: str, count: int, body: bytes, headers: dict[str, str]) -> int:
        kind, _, argument = path.strip("/").partition("/")
        if kind in ("ok", "drop-second", "chunked", "until-close"):
            return 200
        if kind == "delay":
            await asyncio.sleep(int(argument) / 1000)
            return 200
        if kind == "serial":
            async with self.lock:
                await asyncio.sleep(int(argument) / 1000)
            return 200
        if kind == "fail-every":
            return 500 if count % int(argument) == 0 else 200
        if kind == "hang-every":
            if count % int(argument) == 0:
                await asyncio.Event().wait()
            return 200
        if path == "/endpoints/risk-de/invocations":
            self.bodies.append((body, headers.get("content-type", "")))
            return 200
        return 404


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    running = ScriptedServer()
    yield running
    running.stop()


def test_sends_exactly_rate_times_duration_requests_on_schedule(server: ScriptedServer) -> None:
    result = LoadTest(server.url("/ok"), b"{}").run(200, 1.5)
    assert (result.sent, result.ok, result.errors) == (300, 300, {})
    assert server.received["/ok"] == 300
    assert result.ok_percent == 100.0
    assert result.p50_ms is not None and result.p99_ms is not None and result.p999_ms is not None
    assert 0 < result.p50_ms <= result.p99_ms <= result.p999_ms


def test_latency_includes_the_servers_delay(server: ScriptedServer) -> None:
    result = LoadTest(server.url("/delay/50"), b"{}").run(40, 1.0)
    assert (result.sent, result.ok) == (40, 40)
    assert result.p50_ms is not None and result.p50_ms >= 50.0


def test_a_backlog_shows_in_the_latency_because_it_counts_from_the_scheduled_send(server: ScriptedServer) -> None:
    # 40 requests due 10 ms apart, served one at a time in 20 ms each: the server needs >= 800 ms for all of
    # them. Request i (due at 10·i ms) cannot finish before 20·(i+1) ms, so its latency is >= 10·i + 20 ms,
    # although the server spends only 20 ms on it: a closed-loop client would report 20 ms.
    result = LoadTest(server.url("/serial/20"), b"{}").run(100, 0.4)
    assert (result.sent, result.ok) == (40, 40)
    assert result.p50_ms is not None and result.p50_ms >= 210.0  # 20th smallest of the bounds 10·i + 20
    assert result.p99_ms is not None and result.p99_ms >= 410.0  # the last request: due at 390 ms, done >= 800
    assert server.max_in_flight >= 2  # sends did not wait for answers


def test_a_request_waiting_for_a_connection_carries_its_wait(server: ScriptedServer) -> None:
    # one connection, 20 ms per answer, a request due every 10 ms: the queue forms in the generator itself, and
    # request i still cannot finish before 20·(i+1) ms, so latency from the due time is >= 10·i + 20 ms, whereas
    # timing from the moment each request leaves would report about 20 ms
    result = LoadTest(server.url("/delay/20"), b"{}", connections=1).run(100, 0.4)
    assert (result.sent, result.ok) == (40, 40)
    assert result.p50_ms is not None and result.p50_ms >= 210.0
    assert result.p99_ms is not None and result.p99_ms >= 410.0
    assert server.max_in_flight == 1


def test_error_statuses_are_counted_by_status(server: ScriptedServer) -> None:
    result = LoadTest(server.url("/fail-every/4"), b"{}").run(100, 0.4)
    assert (result.sent, result.ok, result.errors) == (40, 30, {"500": 10})
    assert result.ok_percent == 75.0


def test_unanswered_requests_time_out_and_the_run_still_ends(server: ScriptedServer) -> None:
    result = LoadTest(server.url("/hang-every/2"), b"{}", timeout=3.0).run(20, 1.0)
    assert (result.sent, result.ok, result.errors) == (20, 10, {"timeout": 10})


def test_everything_timing_out_leaves_no_latencies(server: ScriptedServer) -> None:
    result = LoadTest(server.url("/hang-every/1"), b"{}", timeout=0.3).run(10, 0.5)
    assert (result.sent, result.ok, result.errors) == (5, 0, {"timeout": 5})
    assert (result.p50_ms, result.p99_ms, result.p999_ms) == (None, None, None)


def test_requests_to_a_closed_port_are_connection_failures(server: ScriptedServer) -> None:
    port = server.port
    server.stop()
    result = LoadTest(f"http://127.0.0.1:{port}/ok", b"{}").run(20, 0.5)
    assert (result.sent, result.ok, result.errors) == (10, 0, {"connection": 10})


def test_a_keep_alive_connection_closed_under_a_request_is_retried_once_on_a_fresh_one(
        server: ScriptedServer) -> None:
    # one connection at most: every request after the first reaches the server on a connection that has
    # already served one, and the server drops it unanswered (as a server closing an idle connection would)
    result = LoadTest(server.url("/drop-second"), b"{}", connections=1).run(20, 0.5)
    assert (result.sent, result.ok, result.errors) == (10, 10, {})
    assert server.dropped >= 1


@pytest.mark.parametrize("path", ["/chunked", "/until-close"])
def test_reads_chunked_bodies_and_bodies_that_end_with_the_connection(server: ScriptedServer, path: str) -> None:
    result = LoadTest(server.url(path), b"{}").run(40, 0.5)
    assert (result.sent, result.ok, result.errors) == (20, 20, {})
    assert server.received[path] == 20


def test_runs_inside_an_event_loop_that_has_other_work(server: ScriptedServer) -> None:
    async def both() -> tuple[RateResult, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        result = await LoadTest(server.url("/delay/20"), b"{}").run_async(50, 0.5)
        ticker.cancel()
        return result, ticks

    result, ticks = asyncio.run(both())
    assert (result.sent, result.ok) == (25, 25)
    assert ticks > 0


def test_runs_several_rates_in_turn(server: ScriptedServer) -> None:
    results = LoadTest(server.url("/ok"), b"{}").run_rates([20, 40], 0.5, pause=0)
    assert [(r.rate, r.sent, r.ok) for r in results] == [(20, 10, 10), (40, 20, 20)]


def test_refuses_what_it_cannot_do() -> None:
    with pytest.raises(LoadTestError, match="http://host"):
        LoadTest("https://127.0.0.1:8080/x")
    with pytest.raises(LoadTestError, match="positive"):
        LoadTest("http://127.0.0.1:8080/x").run(0, 1)
    with pytest.raises(LoadTestError, match="bad header"):
        LoadTest("http://127.0.0.1:8080/x", headers={"X-Bad": "a\r\nInjected: 1"})


def test_the_table_lines_up_under_its_heading() -> None:
    rows = format_table([RateResult(200, 30, 6000, 6000, 1.234, 8.0, 12.5),
                         RateResult(3000, 30, 90000, 89910, 2.0, 19.5, 40.25, {"503": 90})]).splitlines()
    assert rows[0] == HEADER
    assert rows[1] == " 200  6000  100.00        1.2     8.0      12.5"
    assert rows[2] == "3000 90000   99.90        2.0    19.5      40.2"
    assert len(COLUMNS) == 6


def test_cli_prints_one_row_per_rate(server: ScriptedServer, cli, tmp_path: Path) -> None:
    body = tmp_path / "order.json"
    body.write_text('{"order": {"amount": 12.5}}')
    run = cli("endpoints", "loadtest", "risk-de", "--body", str(body), "--rates", "20,40", "--duration", "0.5",
              "--url", server.url(""), "--content-type", "application/json; charset=utf-8")
    assert run.returncode == 0, run
    lines = run.stdout.splitlines()
    assert lines[0] == HEADER
    assert [line.split()[:3] for line in lines[1:3]] == [["20", "10", "100.00"], ["40", "20", "100.00"]]
    assert all(line.startswith("note: ") for line in lines[3:])  # only if this machine delayed the sender
    # the probe request, then 30 scheduled ones, all with the file's bytes and the given content type
    assert server.received["/endpoints/risk-de/invocations"] == 31
    assert set(server.bodies) == {(body.read_bytes(), "application/json; charset=utf-8")}


def test_cli_json(server: ScriptedServer, cli, tmp_path: Path) -> None:
    body = tmp_path / "order.json"
    body.write_text("{}")
    run = cli("endpoints", "loadtest", "risk-de", "--body", str(body), "--rates", "20", "--duration", "0.5",
              "--url", server.url(""), "--json")
    assert run.returncode == 0, run
    document = json.loads(run.stdout)
    assert document["endpoint"] == "risk-de"
    assert document["url"] == server.url("/endpoints/risk-de/invocations")
    [row] = document["results"]
    assert (row["rate"], row["sent"], row["ok"], row["ok_percent"], row["errors"]) == (20, 10, 10, 100.0, {})
    assert row["p50_ms"] <= row["p99_ms"] <= row["p999_ms"]


def test_cli_names_a_missing_endpoint_server_or_file_in_one_line(server: ScriptedServer, cli, tmp_path: Path) -> None:
    body = tmp_path / "order.json"
    body.write_text("{}")
    missing = cli("endpoints", "loadtest", "risk-fr", "--body", str(body), "--url", server.url(""))
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"error: no endpoint risk-fr at {server.url('')} (HTTP 404): create it with `forgeline endpoints create` "
        "or check the name"]
    port = server.port
    server.stop()
    down = cli("endpoints", "loadtest", "risk-de", "--body", str(body), "--url", f"http://127.0.0.1:{port}")
    assert down.returncode == 1
    assert "nothing answers at" in down.stderr and len(down.stderr.strip().splitlines()) == 1
    no_file = cli("endpoints", "loadtest", "risk-de", "--body", str(tmp_path / "nope.json"))
    assert no_file.returncode == 1 and "no file" in no_file.stderr and "--body" in no_file.stderr
    bad_rates = cli("endpoints", "loadtest", "risk-de", "--body", str(body), "--rates", "200,fast")
    assert bad_rates.returncode == 1 and "--rates" in bad_rates.stderr


def test_load_testing_a_real_endpoint_of_forgeline_serve(models: Any, serve: Any, cli: Any, tmp_path: Path) -> None:
    models("payments-de", scale=1.0, bias=0.5)
    created = cli("endpoints", "create", "risk-de", "--model", "payments-de@approved")
    assert created.returncode == 0, created
    server = serve()
    server.wait_serving("risk-de")
    body = tmp_path / "order.json"
    body.write_text("[[1, 2], [3, 4]]")

    run = cli("endpoints", "loadtest", "risk-de", "--body", str(body), "--rates", "50,100", "--duration", "1",
              "--url", server.url, "--json")

    assert run.returncode == 0, run
    rows = json.loads(run.stdout)["results"]
    assert [(row["rate"], row["sent"], row["ok"], row["errors"]) for row in rows] == [(50, 50, 50, {}),
                                                                                    (100, 100, 100, {})]
    table = cli("endpoints", "loadtest", "risk-de", "--body", str(body), "--rates", "20", "--duration", "1",
                "--url", server.url)
    assert table.returncode == 0, table
    assert table.stdout.splitlines()[0] == HEADER
    assert table.stdout.splitlines()[1].split()[:3] == ["20", "20", "100.00"]
