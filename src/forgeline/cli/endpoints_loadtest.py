"""``forgeline endpoints loadtest``: an open-loop load test of one endpoint at fixed rates, one table row per rate."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from forgeline.errors import LoadTestError
from forgeline.serving.loadtest import DEFAULT_HOST, LoadTest, RateResult

DEFAULT_URL = f"http://{DEFAULT_HOST}:8080"
LAG_WARNING_MS = 5.0  # beyond this the generator, not the server, is adding latency
COLUMNS = (("rate", 4), ("sent", 6), ("ok %", 8), ("p50 ms", 11), ("p99 ms", 8), ("p99.9 ms", 10))


def loadtest(
    name: Annotated[str, typer.Argument(help="Endpoint name.")],
    body: Annotated[Path, typer.Option("--body", help="File whose bytes are the body of every request.")],
    rates: Annotated[str, typer.Option("--rates", help="Requests per second, comma-separated; run in turn.")]
        = "200,400,1000",
    duration: Annotated[float, typer.Option("--duration", help="Seconds at each rate.")] = 30.0,
    url: Annotated[str, typer.Option("--url", help="The server (`forgeline serve`) to load.")] = DEFAULT_URL,
    content_type: Annotated[str, typer.Option("--content-type", help="Content-Type of the body.")]
        = "application/json",
    accept: Annotated[str | None, typer.Option("--accept", help="Accept header (default: none sent).")] = None,
    header: Annotated[list[str] | None, typer.Option("--header", help="Extra 'Name: value' header, e.g. "
                                                    "'Authorization: Bearer …'; repeatable.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds from a request's scheduled send until it "
                                                             "counts as failed; also the wait after the last send.")]
        = 5.0,
    connections: Annotated[int, typer.Option("--connections", help="Most keep-alive connections at once.")] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of the table.")] = False,
) -> None:
    """Send requests on a fixed schedule (open loop) and report success % and latency percentiles per rate.

    Latency counts from each request's scheduled send time, so a server that falls behind shows its queue.
    """
    test = LoadTest(url=f"{url.rstrip('/')}/endpoints/{name}/invocations", body=_read_body(body),
                    content_type=content_type, accept=accept, headers=_parse_headers(header or []),
                    timeout=timeout, connections=connections)
    planned = _parse_rates(rates)
    _check_reachable(test, name, url)
    if as_json:
        results = test.run_rates(planned, duration)
        document = {"endpoint": name, "url": test.url, "duration": duration,
                    "results": [result.to_dict() for result in results]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    typer.echo(_row([label for label, _ in COLUMNS]))
    results = []
    for result in test.iter_rates(planned, duration):  # a row as soon as its rate is done: progress on long tests
        typer.echo(_row(_cells(result)))
        results.append(result)
    for result in results:
        _print_notes(result)


def format_table(results: list[RateResult]) -> str:
    """The table ``loadtest`` prints: a heading and one row per rate."""
    return "\n".join(_row(cells) for cells in [[label for label, _ in COLUMNS], *map(_cells, results)])


def _cells(result: RateResult) -> list[str]:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    rate = f"{result.rate:g}"
    return [rate, str(result.sent), f"{result.ok_percent:.2f}", ms(result.p50_ms), ms(result.p99_ms),
            ms(result.p999_ms)]


def _row(cells: list[str]) -> str:
    """Cells right-aligned under their headings; a wider value pushes its column, keeping one space."""
    return "".join(cell.rjust(width if index == 0 else max(width, len(cell) + 1))
                   for index, (cell, (_, width)) in enumerate(zip(cells, COLUMNS)))


def _print_notes(result: RateResult) -> None:
    rate = f"{result.rate:g} rps"
    if result.errors:
        listed = ", ".join(f"{kind} × {count}" for kind, count in result.errors.items())
        typer.echo(f"failures at {rate}: {listed}")
    if result.send_lag_p99_ms > LAG_WARNING_MS:
        typer.echo(f"note: at {rate} the load generator itself sent up to {result.send_lag_p99_ms:.1f} ms late "
                   "(p99); those latencies include its delay")


def _read_body(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise LoadTestError(f"no file {path}: --body takes a file whose bytes are the request body") from None
    except OSError as exc:
        raise LoadTestError(f"cannot read --body {path}: {exc.strerror}") from None


def _parse_rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise LoadTestError(f"--rates {text!r}: give requests per second separated by commas, "
                            "e.g. 200,400,1000") from None
    if not rates or any(not rate > 0 for rate in rates):
        raise LoadTestError(f"--rates {text!r}: every rate must be a positive number of requests per second")
    return rates


def _parse_headers(lines: list[str]) -> dict[str, str]:
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise LoadTestError(f"--header {line!r}: give it as 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def _check_reachable(test: LoadTest, name: str, url: str) -> None:
    """One request before the schedule: a missing server or endpoint is one clear line, not a table of failures."""
    probe = test.run(1.0, 1.0)
    if "connection" in probe.errors:
        raise LoadTestError(f"nothing answers at {url}: start `forgeline serve` there or pass --url")
    if "timeout" in probe.errors:
        raise LoadTestError(f"{url} did not answer within {test.timeout:g} s: is the server overloaded or "
                            "hung? (raise --timeout if it is just slow)")
    if "404" in probe.errors:
        raise LoadTestError(f"no endpoint {name} at {url} (HTTP 404): create it with `forgeline endpoints create`"
                            " or check the name")
    if "401" in probe.errors or "403" in probe.errors:
        raise LoadTestError(f"{url} refused the request without a valid token: pass "
                            "--header 'Authorization: Bearer <token>'")
