"""Alarms through a real ``forgeline server``: the routes and roles, the CLI against the server, a failing
pipeline's events delivered to a real webhook receiver, and pending deliveries surviving a SIGKILLed server."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from alarms.receivers import wait_for, webhook_receiver
from api.conftest import RunningServer, StartServer, error_of
from conftest import Cli

FAILING = """
    from forgeline.workflow import Pipeline, ProcessingStep

    broken = ProcessingStep(name="Import", code="exit3.py")
    pipeline = Pipeline(name="imports", steps=[broken])
"""
EXIT_3 = """
    import sys
    print("shard 7 is corrupt: checksum mismatch", file=sys.stderr)
    sys.exit(3)
"""
# Short waits between tries, so a retried delivery is due again within the test.
FAST = {"FORGELINE_ALARM_POLL_SECONDS": "0.1", "FORGELINE_ALARM_RETRY_SECONDS": "0.2"}


def remote(server: RunningServer, token: str = "admin") -> dict[str, str]:
    """The environment that points the CLI at the server."""
    return {"FORGELINE_URL": server.url, "FORGELINE_TOKEN": server.token_for(token)}


def test_alarm_routes_check_roles_and_refuse_bad_input_storing_nothing(server: RunningServer) -> None:
    admin, viewer = server.client(), server.client("viewer")
    body = {"name": "failures", "events": ["execution.failed", "step.failed"],
            "targets": ["webhook:https://hooks.example/x"]}
    refused = viewer.post("/alarms", json=body)
    assert refused.status_code == 403 and "needs admin" in error_of(refused)
    for bad, message in [({"events": ["execution.flailed"]}, "unknown event 'execution.flailed'"),
                         ({"targets": ["webhook:hooks.example/x"]}, "is not an http(s) URL"),
                         ({"targets": ["email:ml-team"]}, "'ml-team' is not an email address"),
                         ({"events": ["metric"], "when": "steps.Compare.properties.x >> 1"}, "unexpected '>'")]:
        answer = admin.post("/alarms", json={**body, **bad})
        assert answer.status_code == 400 and message in error_of(answer), answer.text
    assert viewer.get("/alarms").json() == []

    created = admin.post("/alarms", json=body)
    assert created.status_code == 201 and created.json()["events"] == ["execution.failed", "step.failed"]
    assert admin.post("/alarms", json=body).status_code == 400  # the name is taken
    assert viewer.post("/alarms/failures/pause").status_code == 403
    assert admin.post("/alarms/failures/pause").json()["paused"] is True
    assert viewer.get("/alarms/failures").json()["paused"] is True
    assert admin.post("/alarms/failures/resume").json()["paused"] is False
    assert viewer.get("/alarms/history", params={"limit": 5}).json() == []
    assert admin.delete("/alarms/failures").json() == {"deleted": "failures"}
    missing = viewer.get("/alarms/failures")
    assert missing.status_code == 404 and "no alarm 'failures'" in error_of(missing)


def test_the_cli_prints_the_same_against_the_server_as_against_the_store(server: RunningServer, cli: Cli) -> None:
    made = cli("alarms", "create", "drift", "--on", "metric", "--pipeline", "packaging-training", "--when",
               "steps.Compare.properties.deviation.score_drop > 0.05", "--to", "email:ml-team@example.com",
               env=remote(server))
    assert made.returncode == 0 and made.stdout.startswith("alarm drift created: on metric"), made
    denied = cli("alarms", "create", "x", "--on", "step.failed", "--to", "command:true",
                 env=remote(server, "operator"))
    assert denied.returncode == 1 and "needs admin" in denied.stderr and len(denied.stderr.splitlines()) == 1
    bad = cli("alarms", "create", "x", "--on", "step.flailed", "--to", "command:true", env=remote(server))
    assert bad.returncode == 1 and bad.stderr.strip() == (
        "error: unknown event 'step.flailed'; events: execution.started, execution.succeeded, execution.failed, "
        "execution.stopped, step.failed, model.registered, model.approved, model.rejected, trigger.rejected, metric")
    for command in (["alarms", "list"], ["alarms", "list", "--json"], ["alarms", "describe", "drift"],
                    ["alarms", "history", "--json"]):
        over_server, local = cli(*command, env=remote(server, "viewer")), cli(*command)
        assert over_server.returncode == local.returncode == 0, (over_server, local)
        assert over_server.stdout == local.stdout, command
    assert cli("alarms", "pause", "drift", env=remote(server)).stdout == "alarm drift paused\n"
    assert "(paused)" in cli("alarms", "describe", "drift").stdout
    assert cli("alarms", "delete", "drift", env=remote(server)).returncode == 0
    assert "no alarms yet" in cli("alarms", "list").stdout


def test_a_failing_pipeline_rings_the_webhook_and_the_history_says_so(project, cli: Cli,
                                                                      start_server: StartServer) -> None:
    project.write("exit3.py", EXIT_3)
    project.write("pipeline.py", FAILING)
    with webhook_receiver() as receiver:
        server = start_server(env=FAST)
        assert cli("alarms", "create", "failures", "--on", "execution.failed", "--on", "step.failed",
                   "--to", f"webhook:{receiver.url}", env=remote(server)).returncode == 0
        run = cli("run", "pipeline.py", cwd=project.root)
        assert run.returncode != 0
        wait_for("two webhook calls", lambda: len(receiver.bodies) >= 2)
    step_body, execution_body = sorted(receiver.bodies, key=lambda body: body["event"], reverse=True)
    assert (step_body["event"], step_body["step"], step_body["pipeline"]) == ("step.failed", "Import", "imports")
    assert "shard 7 is corrupt: checksum mismatch" in step_body["text"]
    execution_id = step_body["execution_id"]
    assert f"`forgeline executions describe {execution_id}`" in step_body["text"]
    assert execution_body["event"] == "execution.failed" and execution_body["execution_id"] == execution_id
    history = cli("alarms", "history", env=remote(server, "viewer"))
    assert history.stdout.count("delivered") == 2 and "step.failed" in history.stdout, history


def test_pending_deliveries_survive_a_sigkilled_server_and_go_out_once(project, cli: Cli,
                                                                      start_server: StartServer,
                                                                      tmp_path: Path) -> None:
    project.write("exit3.py", EXIT_3)
    project.write("pipeline.py", FAILING)
    with webhook_receiver(failures=10**6) as receiver:  # refuses everything until told otherwise
        first = start_server(env=FAST)
        assert cli("alarms", "create", "failures", "--on", "execution.failed", "--to",
                   f"webhook:{receiver.url}").returncode == 0
        assert cli("run", "pipeline.py", cwd=project.root).returncode != 0
        wait_for("a refused first try", lambda: receiver.refused >= 1)
        wait_for("the refused try recorded", lambda: any(  # not only sent: its failure is in the store
            d["attempts"] >= 1 and d["last_error"] for d in first.client("viewer").get("/alarms/history").json()))
        first.stop(signal.SIGKILL)
        receiver.failures = 0  # the receiver is back
        second = start_server(env=FAST)
        wait_for("the delivery after the restart", lambda: len(receiver.bodies) >= 1)
        # A second failure, delivered after the first in order: by then a repeat of the first would have arrived.
        assert cli("run", "pipeline.py", cwd=project.root).returncode != 0
        wait_for("the second execution's delivery", lambda: len(receiver.bodies) >= 2)
        history = second.client("viewer").get("/alarms/history").json()
    first_id = receiver.bodies[0]["execution_id"]
    assert [body["execution_id"] for body in receiver.bodies].count(first_id) == 1
    assert len({body["execution_id"] for body in receiver.bodies}) == 2
    assert [(d["status"], d["event_subject"]) for d in history][-1] == ("delivered", first_id)
    assert history[-1]["attempts"] >= 2 and history[-1]["last_error"] is None


def test_a_rejected_trigger_file_is_announced(project, cli: Cli, start_server: StartServer, tmp_path: Path) -> None:
    project.write("exit3.py", EXIT_3)
    project.write("pipeline.py", FAILING)
    drops = tmp_path / "drops"
    drops.mkdir()
    with webhook_receiver() as receiver:
        start_server(env=FAST)
        assert cli("alarms", "create", "bad-files", "--on", "trigger.rejected", "--pipeline", "imports",
                   "--to", f"webhook:{receiver.url}").returncode == 0
        made = cli("triggers", "create", "drops", "--pipeline", "pipeline.py", "--watch", str(drops),
                   "--pattern", "*.json", "--poll-seconds", "0.2", cwd=project.root)
        assert made.returncode == 0, made
        (drops / "broken.json").write_text('{"pipeline_parameters": {"Rows": ')
        (body,) = wait_for("the rejection's webhook call", lambda: receiver.bodies)
    assert (body["event"], body["trigger"]) == ("trigger.rejected", "drops")
    assert body["text"].startswith("[forgeline] trigger drops rejected ") and "broken.json" in body["text"]
    assert "reason: " in body["text"]


def test_a_paused_alarm_sends_none_of_its_pending_deliveries_and_the_history_says_why(
        project, cli: Cli, start_server: StartServer) -> None:
    project.write("exit3.py", EXIT_3)
    project.write("pipeline.py", FAILING)
    with webhook_receiver(failures=10**6) as receiver:  # refuses everything until told otherwise
        server = start_server(env=FAST)
        for name in ("failures", "steps"):
            assert cli("alarms", "create", name, "--on", "execution.failed" if name == "failures" else "step.failed",
                       "--to", f"webhook:{receiver.url}", env=remote(server)).returncode == 0
        assert cli("run", "pipeline.py", cwd=project.root).returncode != 0
        wait_for("both alarms tried and refused", lambda: receiver.refused >= 2)
        assert cli("alarms", "pause", "failures", env=remote(server)).returncode == 0
        receiver.failures = 0  # the receiver is back: the unpaused alarm's retry goes out, the paused one's not
        wait_for("the unpaused alarm's delivery", lambda: len(receiver.bodies) >= 1)
        # A second failure after it: deliveries go out in order, so a stray one of the paused alarm came first.
        assert cli("run", "pipeline.py", cwd=project.root).returncode != 0
        wait_for("the second step.failed delivery", lambda: len(receiver.bodies) >= 2)
        history = cli("alarms", "history", "--alarm", "failures", "--json", env=remote(server, "viewer"))
        rows = server.client("viewer").get("/alarms/history", params={"alarm": "failures"}).json()
    assert [body["event"] for body in receiver.bodies] == ["step.failed", "step.failed"]
    assert [(row["status"], row["last_error"]) for row in rows] == [
        ("dropped", "not sent: alarm 'failures' was paused first")]
    assert [(row["status"], row["last_error"]) for row in json.loads(history.stdout)] == [
        ("dropped", "not sent: alarm 'failures' was paused first")]
