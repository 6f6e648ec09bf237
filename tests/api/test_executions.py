"""Executions over the API of a real server: start (parameters checked as `forgeline run` checks them), the
queue launcher running them, describe, stop, retry, pages of the list, steps, attempts and events."""

from __future__ import annotations

import httpx
import pytest

from api.conftest import RunningServer, error_of
from api.projects import gated_project, start, store_pipeline


def wait_status(client: httpx.Client, execution_id: str, wanted: set[str], wait_until) -> dict:
    return wait_until(lambda: (lambda body: body if body["status"] in wanted else None)(
        client.get(f"/executions/{execution_id}").json()), timeout=120, what=f"execution status in {wanted}")


def test_an_operator_starts_a_stored_pipeline_and_the_server_runs_it(server: RunningServer, project,
                                                                       wait_until) -> None:
    gate = gated_project(project)
    with server.client("operator") as client:
        stored = store_pipeline(client, project)
        assert (stored["name"], stored["version"]) == ("gated", 1) and stored["code_snapshot"]
        response = start(client, project, Count="3")
        assert response.status_code == 201, response.text
        started = response.json()
        assert started["status"] == "Queued"
        assert started["started_by"] == {"kind": "api", "name": "operator-test"}
        assert started["parameters"] == {"Count": 3}
        wait_status(client, started["id"], {"Executing"}, wait_until)
        gate.write_text("")
        done = wait_status(client, started["id"], {"Succeeded", "Failed", "Stopped"}, wait_until)
    assert done["status"] == "Succeeded", done
    assert [step["name"] for step in done["steps"]] == ["Gate"]
    assert done["attempts"][0]["status"] == "Succeeded"
    assert done["code"]["snapshot"] == stored["code_snapshot"]
    with server.client("viewer") as client:
        assert client.get(f"/executions/{started['id']}/metrics").json() == []  # a processing step logs none
        step = client.get(f"/executions/{started['id']}/steps/Gate").json()
    assert (step["name"], step["status"]) == ("Gate", "Succeeded")


def test_a_bad_parameter_is_a_422_naming_it_and_nothing_starts(server: RunningServer, project) -> None:
    gated_project(project)
    with server.client("operator") as client:
        store_pipeline(client, project)
        wrong_type = start(client, project, Count="many")
        unknown = start(client, project, Colour="red")
        listed = client.get("/executions").json()
    assert wrong_type.status_code == 422 and "Count" in error_of(wrong_type)
    assert unknown.status_code == 422 and "Colour" in error_of(unknown)
    assert listed == {"items": [], "next_cursor": None}


def test_an_unknown_pipeline_or_execution_is_a_404(server: RunningServer) -> None:
    with server.client("operator") as client:
        missing = client.post("/executions", json={"pipeline": "nope"})
        described = client.get("/executions/abcdef12")
    assert missing.status_code == 404 and "nope" in error_of(missing)
    assert described.status_code == 404 and "abcdef12" in error_of(described)


def test_a_malformed_request_is_a_422_naming_the_field(server: RunningServer) -> None:
    with server.client("viewer") as client:
        response = client.get("/executions", params={"limit": "lots"})
        status = client.get("/executions", params={"status": "Sleeping"})
    assert response.status_code == 422 and "'limit'" in error_of(response)
    assert status.status_code == 422 and "'status'" in error_of(status)


def test_roles_viewer_reads_but_may_not_start_stop_or_store(server: RunningServer, project) -> None:
    gated_project(project)
    with server.client("viewer") as viewer:
        assert viewer.get("/executions").status_code == 200
        refused = [viewer.post("/executions", json={"pipeline": "gated"}),
                   viewer.post("/executions/abcd1234/stop"), viewer.post("/executions/abcd1234/retry"),
                   viewer.post("/executions/abcd1234/resume"),
                   viewer.post("/pipelines", json={"definition": {}, "code": ""})]
    for response in refused:
        assert response.status_code == 403, response.text
        assert "viewer-test" in error_of(response) and "operator" in error_of(response)


def test_stop_a_running_execution_then_retry_it(server: RunningServer, project, wait_until) -> None:
    gate = gated_project(project)
    with server.client("operator") as client:
        store_pipeline(client, project)
        execution_id = start(client, project).json()["id"]
        wait_until(lambda: client.get(f"/executions/{execution_id}/attempts").json(), timeout=120,
                   what="the step's first attempt")
        running = client.post(f"/executions/{execution_id}/resume")
        assert running.status_code == 400 and "nothing to resume" in error_of(running)
        stopped = client.post(f"/executions/{execution_id}/stop")
        assert stopped.status_code == 200 and stopped.json()["status"] in ("Stopping", "Stopped")
        wait_status(client, execution_id, {"Stopped"}, wait_until)
        gate.write_text("")
        retried = client.post(f"/executions/{execution_id}/retry")
        assert retried.status_code == 200, retried.text
        done = wait_status(client, execution_id, {"Succeeded", "Failed"}, wait_until)
        assert done["status"] == "Succeeded"
        assert [a["attempt"] for a in client.get(f"/executions/{execution_id}/attempts",
                                                 params={"step": "Gate"}).json()] == [1, 2]
        events = client.get(f"/executions/{execution_id}/events").json()
        later = client.get(f"/executions/{execution_id}/events", params={"after": events[2]["id"]}).json()
        assert later == events[3:]
        again = client.post(f"/executions/{execution_id}/retry")
        assert again.status_code == 400 and "nothing to retry" in error_of(again)


@pytest.fixture
def many_executions(server: RunningServer) -> list[str]:
    """Seven finished executions in the server's store (two pipelines, one Failed), made directly; newest first."""
    from forgeline.config import Settings
    from forgeline.store.metadata.records import ExecutionStatus
    from forgeline.store.metadata.sql_store import SqlMetadataStore
    from forgeline.store.metadata.updates import ExecutionUpdate

    store = SqlMetadataStore(Settings.from_env().database_url)
    for name in ("alpha", "beta"):
        store.save_pipeline_version(name, {"Name": name, "Steps": []})
    for number in range(7):
        store.create_execution(execution_id=f"{number:04d}aaaa", pipeline_name="alpha" if number % 2 else "beta",
                               pipeline_version=1, parameters={}, work_dir="/w", steps=[])
        store.update_execution(f"{number:04d}aaaa", ExecutionUpdate(
            status=ExecutionStatus.FAILED if number == 3 else ExecutionStatus.STOPPED))
    ids = [record.id for record in store.list_executions(limit=100)]
    store.close()
    return ids


def test_pages_follow_each_other_in_a_stable_order(server: RunningServer, many_executions: list[str]) -> None:
    with server.client("viewer") as client:
        seen: list[str] = []
        cursor = None
        while True:
            page = client.get("/executions", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        alpha = client.get("/executions", params={"pipeline": "alpha", "limit": 2}).json()
        alpha_next = client.get("/executions", params={"pipeline": "alpha", "limit": 2,
                                                       "cursor": alpha["next_cursor"]}).json()
        stopped = client.get("/executions", params=[("status", "Stopped"), ("status", "Succeeded")]).json()
        bad = client.get("/executions", params={"cursor": "not-a-cursor"})
    assert seen == many_executions
    assert [i["pipeline_name"] for i in alpha["items"] + alpha_next["items"]] == ["alpha"] * 3
    assert [i["id"] for i in alpha["items"] + alpha_next["items"]] == [i for i in many_executions
                                                                       if int(i[:4]) % 2]
    assert len(stopped["items"]) == 6 and "0003aaaa" not in [i["id"] for i in stopped["items"]]
    assert bad.status_code == 400 and "cursor" in error_of(bad)
