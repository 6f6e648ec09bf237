"""/executions/{id}/events/stream: a live page's feed of step events, as Server-Sent Events, until the end."""

from __future__ import annotations

import json
import threading
import time

from api.conftest import RunningServer
from api.projects import gated_project, start, store_pipeline


def read_events(server: RunningServer, path: str, headers: dict[str, str] | None = None,
                found: list[tuple[str, str, str]] | None = None) -> list[tuple[str, str, str]]:
    """(event, id, data) of every event of the stream until it ends (appended to ``found`` as they come)."""
    found = [] if found is None else found
    with server.client("viewer") as client, client.stream("GET", path, headers=headers or {}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        event, event_id, data = "message", "", []
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif not line and data:
                found.append((event, event_id, "\n".join(data)))
                event, event_id, data = "message", "", []
    return found


def test_step_events_stream_live_until_the_execution_ends(server: RunningServer, project) -> None:
    gate = gated_project(project)
    with server.client("operator") as client:
        store_pipeline(client, project)
        execution = start(client, project, Count=3).json()["id"]
    events: list[tuple[str, str, str]] = []
    reader = threading.Thread(target=read_events, args=(server, f"/executions/{execution}/events/stream"),
                              kwargs={"found": events})
    reader.start()
    deadline = time.monotonic() + 120
    while not any('"Executing"' in data and '"Gate"' in data for _, _, data in list(events)):
        assert time.monotonic() < deadline and reader.is_alive(), events
        time.sleep(0.05)
    assert not any(kind == "end" for kind, _, _ in events)  # the stream is live: the step is still running
    gate.write_text("go")
    reader.join(120)
    assert not reader.is_alive()
    assert events[-1][0] == "end" and events[-1][2] == "Succeeded"
    steps = [json.loads(data) for kind, _, data in events if kind == "step"]
    assert steps and all(s["execution_id"] == execution for s in steps)
    assert any(s["step_name"] == "Gate" and s["status"] == "Succeeded" for s in steps)
    ids = [int(i) for kind, i, _ in events if kind == "step"]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    resumed = read_events(server, f"/executions/{execution}/events/stream", {"Last-Event-ID": str(ids[0])})
    assert [int(i) for kind, i, _ in resumed if kind == "step"] == ids[1:]  # a reconnect misses nothing


def test_unknown_execution_is_a_404(server: RunningServer) -> None:
    with server.client("viewer") as client:
        assert client.get("/executions/nope/events/stream").status_code == 404
