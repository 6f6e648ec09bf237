"""The CLI's client of a forgeline server (FORGELINE_URL, FORGELINE_TOKEN): the same records as the store gives.

Answers are turned back into the store's records (pydantic validates the one JSON form into the same frozen
dataclasses), so every command renders them with the code it uses for the store and prints the same output.
An API error becomes a ForgelineError with the server's one line.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from forgeline.config import ServerConnection, Settings
from forgeline.errors import ForgelineError, NotFoundError, ParameterError
from forgeline.store.metadata.records import (
    ExecutionRecord,
    ExecutionStatus,
    ModelPackageEvent,
    ModelPackageGroupSummary,
    ModelPackageRecord,
    StepAttempt,
    StepEvent,
    StepRun,
    StepStatus,
)

if TYPE_CHECKING:  # httpx is imported when a client is made, pydantic when an answer is parsed
    import httpx
    from pydantic import TypeAdapter
    from rich.console import Console

    from forgeline.registry.comparison import MetricsComparison
    from forgeline.registry.model_registry import ModelPackageDescription
    from forgeline.workflow.pipeline import Pipeline

API_PREFIX = "/api/v1"
TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.2

_Record = TypeVar("_Record")


@cache
def _adapter(kind: type) -> TypeAdapter[Any]:
    from pydantic import TypeAdapter

    return TypeAdapter(kind)


def parse(kind: type[_Record], value: Any) -> _Record:
    """The record of type ``kind`` (a dataclass) from its JSON form."""
    parsed: _Record = _adapter(kind).validate_python(value)  # type: ignore[arg-type]
    return parsed


def parse_list(kind: type[_Record], values: list[Any]) -> list[_Record]:
    """Records of type ``kind`` from a JSON list."""
    return [parse(kind, value) for value in values]


@dataclass(frozen=True)
class SseEvent:
    """One Server-Sent Event: its id, kind and data (the data lines joined with newlines)."""

    id: str | None
    event: str
    data: str


class RemoteClient:
    """HTTP calls to one server's /api/v1 with the bearer token; errors as one-line ForgelineErrors."""

    def __init__(self, connection: ServerConnection) -> None:
        """A client of the server ``connection`` names (nothing is sent yet)."""
        import httpx

        self.connection = connection
        headers = {"Authorization": f"Bearer {connection.token}"} if connection.token else {}
        self._http = httpx.Client(base_url=connection.url + API_PREFIX, headers=headers, timeout=TIMEOUT_SECONDS)

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` (under /api/v1) with the query ``params`` that are not None; the JSON answer."""
        return self._json(self._send("GET", path, params=_query(params)))

    def post(self, path: str, body: Any = None) -> Any:
        """POST a JSON ``body`` to ``path``; the JSON answer."""
        return self._json(self._send("POST", path, json=body if body is not None else {}))

    def delete(self, path: str) -> Any:
        """DELETE ``path``; the JSON answer (None when it has no body)."""
        response = self._send("DELETE", path)
        return response.json() if response.content else None

    def get_text(self, path: str, **params: Any) -> tuple[str, httpx.Headers]:
        """GET a text answer (a log) and its headers."""
        response = self._send("GET", path, params=_query(params))
        return response.text, response.headers

    @contextlib.contextmanager
    def stream_events(self, path: str, last_event_id: str | None = None, **params: Any
                      ) -> Iterator[tuple[httpx.Headers, Iterator[SseEvent]]]:
        """Follow a Server-Sent Events answer: ``with`` it for (headers, events) while the stream is open."""
        import httpx

        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            with self._http.stream("GET", path, params=_query(params), headers=headers,
                                   timeout=httpx.Timeout(TIMEOUT_SECONDS, read=None)) as response:
                if response.is_error:
                    response.read()
                    raise self._error(response)
                yield response.headers, _sse_events(response.iter_lines())
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        import httpx

        try:
            response = self._http.request(method, path, **options)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.is_error:
            raise self._error(response)
        return response

    def _json(self, response: httpx.Response) -> Any:
        return response.json()

    def _unreachable(self, exc: Exception) -> ForgelineError:
        return ForgelineError(f"cannot reach the forgeline server at {self.connection.url} ({exc}); is "
                              "`forgeline server` running there? (FORGELINE_URL)")

    def _error(self, response: httpx.Response) -> ForgelineError:
        try:
            message = str(response.json()["error"])
        except (ValueError, KeyError, TypeError):
            message = f"the server answered {response.status_code}: {response.text[:200]}"
        if response.status_code == 401 and not self.connection.token:
            message += " (set FORGELINE_TOKEN)"
        kind = {404: NotFoundError, 422: ParameterError}.get(response.status_code, ForgelineError)
        return kind(message)


def _query(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def _sse_events(lines: Iterator[str]) -> Iterator[SseEvent]:
    event_id: str | None = None
    kind, data = "message", list[str]()
    for line in lines:
        if not line:
            if data or kind != "message":
                yield SseEvent(event_id, kind, "\n".join(data))
            kind, data = "message", list[str]()
            continue
        if line.startswith(":"):
            continue
        field_name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field_name == "data":
            data.append(value)
        elif field_name == "event":
            kind = value
        elif field_name == "id":
            event_id = value


class RemoteExecution:
    """An execution on a server, with what the CLI's watcher asks of an execution (records, events, stop)."""

    def __init__(self, client: RemoteClient, execution_id: str) -> None:
        """The execution ``execution_id`` on the server of ``client``."""
        self.client = client
        self.id = execution_id

    def record(self) -> ExecutionRecord:
        """The execution as stored."""
        return describe_execution(self.client, self.id).record

    @property
    def status(self) -> ExecutionStatus:
        """Its status now."""
        return self.record().status

    def list_steps(self) -> list[StepRun]:
        """Its steps in order."""
        return parse_list(StepRun, self.client.get(f"/executions/{self.id}/steps"))

    def list_attempts(self, step_name: str | None = None) -> list[StepAttempt]:
        """Attempts of the execution (or one step), in the order they started."""
        return parse_list(StepAttempt, self.client.get(f"/executions/{self.id}/attempts", step=step_name))

    def events(self, after: int | None = None) -> list[StepEvent]:
        """Its step events after a cursor."""
        return parse_list(StepEvent, self.client.get(f"/executions/{self.id}/events", after=after))

    def stop(self) -> ExecutionStatus:
        """Ask it to stop; the status it has then."""
        return parse(ExecutionRecord, self.client.post(f"/executions/{self.id}/stop")).status

    def wait(self, timeout: float | None = None, poll_interval: float = POLL_SECONDS) -> ExecutionStatus:
        """Wait for its end (polling the server); its final status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status
            if status.is_terminal:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"execution {self.id} still {status.value} after {timeout} s")
            time.sleep(poll_interval)


def without(described: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A JSON object without some keys (what the API adds to a record)."""
    return {key: value for key, value in described.items() if key not in keys}


def list_executions(client: RemoteClient, pipeline: str | None, statuses: list[ExecutionStatus] | None,
                    since: datetime | None, limit: int) -> tuple[list[ExecutionRecord], dict[str, str]]:
    """Executions, newest first, as `executions list` reads them from the store, with lost-orchestrator notes."""
    page = client.get("/executions", pipeline=pipeline, limit=limit,
                      status=[s.value for s in statuses] if statuses else None,
                      since=since.isoformat() if since else None)
    records = [parse(ExecutionRecord, without(item, "orchestrator_lost")) for item in page["items"]]
    notes = {item["id"]: item["orchestrator_lost"] for item in page["items"] if item.get("orchestrator_lost")}
    return records, notes


@dataclass(frozen=True)
class RemoteDescription:
    """An execution as the server describes it: the record, its steps and attempts, notes and code."""

    raw: dict[str, Any]
    record: ExecutionRecord
    steps: list[StepRun]
    attempts: list[StepAttempt]
    orchestrator_lost: str | None


def describe_execution(client: RemoteClient, execution_id: str) -> RemoteDescription:
    """GET /executions/{id} as records."""
    raw = client.get(f"/executions/{execution_id}")
    return RemoteDescription(raw, parse(ExecutionRecord, without(raw, "steps", "attempts", "orchestrator_lost",
                                                                 "code")),
                             parse_list(StepRun, raw["steps"]), parse_list(StepAttempt, raw["attempts"]),
                             raw.get("orchestrator_lost"))


def refuse_option(used: bool, option: str, why: str) -> None:
    """ForgelineError when ``option`` was given to a command talking to a server (it has no meaning there)."""
    if used:
        raise ForgelineError(f"{option} is not available with a server (FORGELINE_URL): {why}")


def start_pipeline(client: RemoteClient, pipeline: Pipeline, overrides: dict[str, str],
                   settings: Settings) -> RemoteExecution:
    """Store the pipeline (definition and the code it runs from this folder) on the server and start it there.

    Relative data paths resolve in this folder on the server's machine (use URIs when it is another machine).
    """
    from forgeline.api.code_archive import pack_code  # the code snapshot's machinery: only to start remotely
    from forgeline.engine.code_snapshot import code_rules_of, pipeline_code_files

    work_dir = os.getcwd()
    files = pipeline_code_files(pipeline, work_dir, code_rules_of(settings))
    stored = client.post("/pipelines", {"definition": pipeline.to_request(), "code": pack_code(files)})
    started = client.post("/executions", {"pipeline": stored["name"], "version": stored["version"],
                                          "code_snapshot": stored["code_snapshot"], "parameters": overrides,
                                          "work_dir": work_dir})
    return RemoteExecution(client, started["id"])


def log_chunks(client: RemoteClient, execution_id: str, step: str, attempt: int | None, follow: bool,
               err: Console, source: list[StepRun]) -> Iterator[tuple[int, str]]:
    """A step's log as (attempt, text) pieces, as `forgeline logs` reads them from the store; followed over SSE.

    Before the first piece, ``source`` gets the step run whose log it is (a cache hit's: another execution's).
    """
    path = f"/executions/{execution_id}/steps/{step}/logs"
    if not follow:
        text, headers = client.get_text(path, attempt=attempt)
        source.append(_announce(err, headers, step))
        yield int(headers["X-Forgeline-Attempt"]), text
        return
    with client.stream_events(path, attempt=attempt, follow="true") as (headers, events):
        source.append(_announce(err, headers, step))
        for event in events:
            if event.event == "log":
                yield int((event.id or "0:").partition(":")[0]), event.data
            elif event.event == "attempt":
                err.print(f"--- attempt {event.data}", highlight=False)
            elif event.event == "end":
                return


def _announce(err: Console, headers: httpx.Headers, step: str) -> StepRun:
    from forgeline.cli.step_source import announce_source

    asked = StepRun(headers["X-Forgeline-Execution"], step, "", StepStatus.PENDING)
    source = replace(asked, execution_id=headers["X-Forgeline-Source-Execution"])
    announce_source(err, asked, source, "log")
    return source


class RemoteRegistry:
    """The model registry on a server, with the Registry methods the `models` commands call."""

    def __init__(self, client: RemoteClient) -> None:
        """The registry of the server of ``client``."""
        self.client = client

    def groups(self) -> builtins.list[ModelPackageGroupSummary]:
        """Every group with its counts and newest (approved) versions."""
        return parse_list(ModelPackageGroupSummary, self.client.get("/models/groups"))

    def list(self, group: str, status: str | None = None) -> builtins.list[ModelPackageRecord]:
        """The group's versions, newest first."""
        return parse_list(ModelPackageRecord, self.client.get(f"/models/groups/{group}/versions", status=status))

    def describe(self, group: str, version: int) -> ModelPackageDescription:
        """One version with its approval history."""
        from forgeline.registry.model_registry import ModelPackageDescription  # the registry: only for models

        return parse(ModelPackageDescription, self.client.get(f"/models/groups/{group}/versions/{version}"))

    def approve(self, group: str, version: int, note: str | None = None, by: str | None = None) -> ModelPackageEvent:
        """Approve a version; the server records the token's name as who decided."""
        return self._decide("approve", group, version, note, by)

    def reject(self, group: str, version: int, note: str | None = None, by: str | None = None) -> ModelPackageEvent:
        """Reject a version; the server records the token's name as who decided."""
        return self._decide("reject", group, version, note, by)

    def compare(self, group: str, a: int, b: int) -> MetricsComparison:
        """The metrics of two versions side by side."""
        from forgeline.registry.comparison import MetricsComparison

        return parse(MetricsComparison, self.client.get(f"/models/groups/{group}/compare", a=a, b=b))

    def events(self, group: str | None = None, *, to_status: str | None = None,
               limit: int | None = None) -> builtins.list[ModelPackageEvent]:
        """Approval-status transitions, oldest first."""
        return parse_list(ModelPackageEvent, self.client.get("/models/events", group=group, status=to_status,
                                                             limit=limit))

    def _decide(self, verb: str, group: str, version: int, note: str | None, by: str | None) -> ModelPackageEvent:
        refuse_option(by is not None, "--by", "the server records the name of the token (FORGELINE_TOKEN)")
        return parse(ModelPackageEvent,
                     self.client.post(f"/models/groups/{group}/versions/{version}/{verb}", {"note": note}))
