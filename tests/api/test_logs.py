"""Step logs over the API: whole, a byte range, and followed live as Server-Sent Events (Last-Event-ID resumes)."""

from __future__ import annotations

import time

import httpx

from api.conftest import RunningServer, error_of
from api.projects import gated_project, start, store_pipeline


def read_events(response: httpx.Response, until: str, lines=None) -> list[tuple[str | None, str, str]]:
    """(id, event, data) of each event until one of kind ``until`` (included)."""
    events, event_id, kind, data = [], None, "message", []
    for line in lines if lines is not None else response.iter_lines():
        if not line:
            if data or kind != "message":
                events.append((event_id, kind, "\n".join(data)))
                if kind == until:
                    return events
            kind, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            elif field == "event":
                kind = value
            elif field == "id":
                event_id = value
    return events


def test_a_running_steps_log_is_followed_as_server_sent_events(server: RunningServer, project) -> None:
    gate = gated_project(project)
    with server.client("viewer") as viewer, server.client("operator") as operator:
        store_pipeline(operator, project)
        execution_id = start(operator, project, Count=3).json()["id"]
        path = f"/executions/{execution_id}/steps/Gate/logs"
        with viewer.stream("GET", path, headers={"Accept": "text/event-stream"},
                           timeout=httpx.Timeout(60, read=120)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            received = ""
            first: list[tuple[str | None, str, str]] = []
            while "line 2" not in received:  # the step is running, blocked on the gate
                event = read_events(response, "log", lines)[-1]
                first.append(event)
                received += event[2]
            assert viewer.get(f"/executions/{execution_id}").json()["status"] == "Executing"
            gate.write_text("")
            rest = read_events(response, "end", lines)
        text = received + "".join(data for _, kind, data in rest if kind == "log")
        assert text == "".join(f"line {n} ünïcode\n" for n in range(3)) + "released\n"
        assert rest[-1][1:] == ("end", "Succeeded")

        # reconnecting after the first event resumes right after it: nothing twice, nothing lost
        resumed = viewer.get(path, headers={"Accept": "text/event-stream", "Last-Event-ID": first[0][0]})
        again = read_events(resumed, "end", resumed.text.split("\n"))
        assert first[0][2] + "".join(data for _, kind, data in again if kind == "log") == text

        whole = viewer.get(path)
        assert whole.text == text and whole.headers["X-Forgeline-Attempt"] == "1"
        assert int(whole.headers["X-Forgeline-Log-Size"]) == len(text.encode())
        ranged = viewer.get(path, params={"offset": 7, "length": 9})
        assert ranged.text == text.encode()[7:16].decode()


def test_logs_of_an_unknown_step_or_a_bad_last_event_id_are_json_errors(server: RunningServer, project) -> None:
    gate = gated_project(project)
    gate.write_text("")
    with server.client("operator") as client:
        store_pipeline(client, project)
        execution_id = start(client, project).json()["id"]
        missing = client.get(f"/executions/{execution_id}/steps/Nope/logs")
        bad = client.get(f"/executions/{execution_id}/steps/Gate/logs",
                         headers={"Accept": "text/event-stream", "Last-Event-ID": "yesterday"})
    assert missing.status_code == 404 and "Nope" in error_of(missing)
    assert bad.status_code == 400 and "Last-Event-ID" in error_of(bad)


WIDE = """
    import sys
    line = "😀é€" * 1000 + "\\n"  # 9,001 bytes: pages of 64 KB end inside characters
    for _ in range(int(sys.argv[1])):
        sys.stdout.write(line)
"""


def wide_log_execution(client: httpx.Client, project, lines: int = 20) -> str:
    """Run ``wide`` (one step, Wide, printing ``lines`` lines of 2-, 3- and 4-byte characters) to its end."""
    project.write("wide.py", WIDE)
    project.write("pipeline.py", """
        from forgeline.workflow import ParameterInteger, Pipeline, ProcessingStep

        lines = ParameterInteger("Lines", default_value=20)
        pipeline = Pipeline(name="wide", parameters=[lines],
                            steps=[ProcessingStep(name="Wide", code="wide.py", arguments=[lines])])
    """)
    store_pipeline(client, project)
    execution_id = client.post("/executions", json={"pipeline": "wide", "parameters": {"Lines": lines},
                                                    "work_dir": str(project.root)}).json()["id"]
    deadline = time.monotonic() + 240
    while (status := client.get(f"/executions/{execution_id}").json()["status"]) not in TERMINAL:
        assert time.monotonic() < deadline, "the wide execution did not end"
        time.sleep(0.2)
    assert status == "Succeeded"
    return str(execution_id)


TERMINAL = ("Succeeded", "Failed", "Stopped")


def test_log_pages_start_and_end_on_character_boundaries(server: RunningServer, project) -> None:
    with server.client("operator") as client:
        path = f"/executions/{wide_log_execution(client, project)}/steps/Wide/logs"
        whole = client.get(path).content
        size = len(whole)
        assert ("😀é€" * 1000 + "\n") * 20 in whole.decode()

        # the tail page the UI asks for first: its 64 KB edge falls inside a character; it starts after it
        tail = client.get(path, params={"offset": size - 65536, "length": 65536})
        start = int(tail.headers["X-Forgeline-Log-Offset"])
        assert size - 65536 < start <= size - 65536 + 3
        assert tail.content.decode("utf-8") == whole[start:].decode("utf-8")
        assert int(tail.headers["X-Forgeline-Log-Next-Offset"]) == size

        # pages of 64 KB chained on the next offsets the server gives: every one whole characters, the file
        offset, pages = 0, []
        while offset < size:
            page = client.get(path, params={"offset": offset, "length": 65536})
            assert int(page.headers["X-Forgeline-Log-Offset"]) == offset
            pages.append(page.content.decode("utf-8"))  # strict: a split character fails here
            offset = int(page.headers["X-Forgeline-Log-Next-Offset"])
            assert 65536 - 3 <= len(page.content) <= 65536 or offset == size
        assert "".join(pages).encode() == whole

        # an earlier page asked for backwards (up to where the shown text starts) ends right there
        earlier = client.get(path, params={"offset": start - 65536, "length": 65536})
        assert int(earlier.headers["X-Forgeline-Log-Next-Offset"]) == start
        assert earlier.content == whole[int(earlier.headers["X-Forgeline-Log-Offset"]):start]
