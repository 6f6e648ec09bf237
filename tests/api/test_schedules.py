"""Schedules in a real ``forgeline server``: firing under a clock the test writes (FORGELINE_CLOCK_FILE), the
execution running to its end, two servers on one database firing each due time once, catch-up after the
server was killed, and the API and CLI agreeing. Every wait polls the API or the store.
"""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.conftest import ECHO_PIPELINE, ECHO_SCRIPT, RunningServer, StartServer, error_of
from conftest import Cli, Project, wait_until


def write_project(project: Project) -> Path:
    project.write("pipeline.py", ECHO_PIPELINE)
    project.write("echo.py", ECHO_SCRIPT)
    return project.root / "out"


def set_clock(clock: Path, moment: datetime) -> None:
    """Move the servers' clock (written whole, then renamed, so a server never reads half a time)."""
    partial = clock.with_suffix(".partial")
    partial.write_text(moment.isoformat())
    os.replace(partial, clock)


def fires(server: RunningServer, name: str) -> list[dict[str, Any]]:
    with server.client(None if server.token is None else "admin") as client:
        response = client.get(f"/schedules/{name}/fires")
        assert response.status_code == 200, response.text
        return list(response.json())


def wait_for_started_fires(server: RunningServer, name: str, count: int, what: str) -> None:
    """Wait until ``count`` fires of schedule ``name`` have started; a timeout names the fires there were.

    The bound only catches a hang: on two busy cores a server's tick, lease and start can each wait long.
    """
    seen: list[dict[str, Any]] = []

    def started() -> bool:
        seen[:] = fires(server, name)
        return len([f for f in seen if f["outcome"] == "started"]) == count

    try:
        wait_until(started, timeout=300, what=what)
    except pytest.fail.Exception as exc:
        raise AssertionError(f"{exc}; the fires recorded: {seen}") from None


def schedule(server: RunningServer, name: str) -> dict[str, Any]:
    with server.client(None if server.token is None else "admin") as client:
        response = client.get(f"/schedules/{name}")
        assert response.status_code == 200, response.text
        return dict(response.json()["schedule"])


def test_a_weekly_schedule_fires_at_its_due_time_and_the_execution_runs(
        cli: Cli, project: Project, start_server: StartServer, tmp_path: Path) -> None:
    out = write_project(project)
    made = cli("schedules", "create", "weekly-bags", "--pipeline", "pipeline.py", "--cron", "0 6 * * MON",
               "--timezone", "Europe/Berlin", "-p", "ModelType=xgb", "-p", f"Out={out}", cwd=project.root)
    assert made.returncode == 0, made
    clock = tmp_path / "clock"
    server = start_server(env={"FORGELINE_CLOCK_FILE": str(clock)})
    due = datetime.fromisoformat(schedule(server, "weekly-bags")["next_fire_at"].replace("Z", "+00:00"))
    assert due.astimezone(ZoneInfo("Europe/Berlin")).strftime("%a %H:%M") == "Mon 06:00"

    set_clock(clock, due - timedelta(seconds=30))
    set_clock(clock, due + timedelta(seconds=1))
    [fire] = wait_until(lambda: [f for f in fires(server, "weekly-bags") if f["outcome"] != "pending"],
                        timeout=60, what="the due time's fire")
    assert fire["outcome"] == "started" and fire["due_at"].startswith(due.strftime("%Y-%m-%dT%H:%M"))
    execution_id = fire["execution_id"]
    written = wait_until(lambda: (out / f"{execution_id}.json").exists() and (out / f"{execution_id}.json"),
                         timeout=120, what="the scheduled execution's step")
    assert json.loads(written.read_text()) == {"model": "xgb", "uri": ""}  # no trigger: TRIGGER_URI is empty
    record = wait_until(lambda: (r := project.store().get_execution(execution_id)).status.is_terminal and r,
                        timeout=120, what="the execution's end")
    assert record.status.value == "Succeeded"
    assert record.started_by["kind"] == "schedule" and record.started_by["name"] == "weekly-bags"

    described = cli("schedules", "describe", "weekly-bags", cwd=project.root)
    assert described.returncode == 0 and execution_id in described.stdout and "started" in described.stdout
    listed = cli("schedules", "list", "--json", cwd=project.root)
    with server.client("viewer") as client:
        assert json.loads(listed.stdout) == client.get("/schedules").json()


def test_two_servers_on_one_database_fire_each_due_time_exactly_once(
        cli: Cli, project: Project, start_server: StartServer, tmp_path: Path) -> None:
    clock = tmp_path / "clock"
    fire_three_due_times(cli, project, start_server, clock, {"FORGELINE_CLOCK_FILE": str(clock)}, auth=True)


def test_two_servers_on_postgresql_fire_each_due_time_exactly_once(
        cli: Cli, project: Project, start_server: StartServer, tmp_path: Path, postgres_database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGELINE_DATABASE_URL", postgres_database_url)
    clock = tmp_path / "clock"
    env = {"FORGELINE_CLOCK_FILE": str(clock), "FORGELINE_DATABASE_URL": postgres_database_url}
    fire_three_due_times(cli, project, start_server, clock, env, auth=False)


def fire_three_due_times(cli: Cli, project: Project, start_server: StartServer, clock: Path,
                         env: dict[str, str], auth: bool) -> None:
    """Two servers on one database, the clock moved over three due times: three fires, three executions."""
    write_project(project)
    # the servers' time stands still until the test moves it: a slow start that crosses the first due time in
    # real time would otherwise fire it on the system clock, and the counts below would be one ahead
    set_clock(clock, datetime.now(UTC))
    made = cli("schedules", "create", "minutely", "--pipeline", "pipeline.py", "--cron", "* * * * *",
               "--overlap", "allow", cwd=project.root, env=env)
    assert made.returncode == 0, made
    servers = [start_server(env=env, auth=auth) for _ in range(2)]
    due = datetime.fromisoformat(schedule(servers[0], "minutely")["next_fire_at"].replace("Z", "+00:00"))
    for minute in range(3):
        moment = due + timedelta(minutes=minute)
        set_clock(clock, moment + timedelta(seconds=1))
        wait_for_started_fires(servers[1], "minutely", minute + 1, what=f"the fire of {moment}")
    recorded = fires(servers[0], "minutely")
    assert len(recorded) == 3 and {f["outcome"] for f in recorded} == {"started"}
    started = [r for r in project.store().list_executions("echo", limit=100)
               if (r.started_by or {}).get("kind") == "schedule"]
    assert len(started) == 3
    assert sorted(r.started_by["due_at"] for r in started) == sorted(
        (due + timedelta(minutes=m)).isoformat() for m in range(3))


def test_a_killed_server_catches_up_by_policy_after_its_restart(
        cli: Cli, project: Project, start_server: StartServer, tmp_path: Path) -> None:
    write_project(project)
    for name, catchup in (("hourly-last", "last"), ("hourly-none", "none")):
        made = cli("schedules", "create", name, "--pipeline", "pipeline.py", "--cron", "0 * * * *",
                   "--catchup", catchup, cwd=project.root)
        assert made.returncode == 0, made
    clock = tmp_path / "clock"
    first = start_server(env={"FORGELINE_CLOCK_FILE": str(clock)})
    due = datetime.fromisoformat(schedule(first, "hourly-last")["next_fire_at"].replace("Z", "+00:00"))
    set_clock(clock, due - timedelta(minutes=10))
    first.stop(signal.SIGKILL)

    set_clock(clock, due + timedelta(hours=4, minutes=20))  # down for 4 hours: 5 due times missed
    second = start_server(env={"FORGELINE_CLOCK_FILE": str(clock)})
    wait_until(lambda: fires(second, "hourly-last"), timeout=60, what="the catch-up fire")
    next_hour = (due + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M")
    wait_until(lambda: schedule(second, "hourly-none")["next_fire_at"].startswith(next_hour), timeout=60,
               what="catch-up none to skip to the next future due time")
    [caught_up] = fires(second, "hourly-last")
    assert caught_up["due_at"].startswith((due + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"))
    assert caught_up["outcome"] == "started"
    assert fires(second, "hourly-none") == []
    assert schedule(second, "hourly-last")["next_fire_at"].startswith(
        (due + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M"))


def test_schedules_over_the_api_need_admin_to_change_and_check_their_input(
        cli: Cli, project: Project, server: RunningServer) -> None:
    write_project(project)
    assert cli("schedules", "create", "daily", "--pipeline", "pipeline.py", "--cron", "0 5 * * *",
               cwd=project.root).returncode == 0
    body = {"name": "monthly", "pipeline": "echo", "cron": "0 3 1 * *", "timezone": "Europe/Berlin",
            "parameters": {"ModelType": "lr"}}
    with server.client("operator") as operator:
        assert operator.post("/schedules", json=body).status_code == 403
        assert operator.post("/schedules/daily/pause").status_code == 403
        assert operator.get("/schedules").status_code == 200
    with server.client() as admin:
        created = admin.post("/schedules", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["pipeline"]["pipeline_version"] == 1
        bad_cron = admin.post("/schedules", json={**body, "name": "x", "cron": "0 3 1 *"})
        assert bad_cron.status_code == 400 and "invalid cron expression '0 3 1 *'" in error_of(bad_cron)
        bad_zone = admin.post("/schedules", json={**body, "name": "x", "timezone": "Europe/Atlantis"})
        assert bad_zone.status_code == 400 and "unknown time zone 'Europe/Atlantis'" in error_of(bad_zone)
        bad_parameter = admin.post("/schedules", json={**body, "name": "x", "parameters": {"Nope": 1}})
        assert bad_parameter.status_code == 422 and "'Nope'" in error_of(bad_parameter)
        assert admin.get("/schedules/x").status_code == 404
        paused = admin.post("/schedules/daily/pause")
        assert paused.status_code == 200 and paused.json()["paused"] is True
        assert paused.json()["next_fire_at"] is None
        assert admin.post("/schedules/daily/resume").json()["next_fire_at"] is not None
        assert admin.delete("/schedules/monthly").status_code == 204
    assert [s["name"] for s in json.loads(cli("schedules", "list", "--json", cwd=project.root).stdout)] == ["daily"]


def test_bad_input_on_the_command_line_is_one_line_and_stores_nothing(cli: Cli, project: Project) -> None:
    write_project(project)
    assert cli("schedules", "create", "good", "--pipeline", "pipeline.py", "--cron", "0 6 * * MON",
               cwd=project.root).returncode == 0
    project.write("pipeline.py", ECHO_PIPELINE.replace('default_value="hgb"', 'default_value="changed"'))
    for args, message in (
        (["--cron", "0 6 * * FOO"], "error: invalid cron expression '0 6 * * FOO'"),
        (["--cron", "0 6 * * MON", "--timezone", "Mars/Base"], "error: unknown time zone 'Mars/Base'"),
        (["--cron", "0 6 * * MON", "-p", "Colour=red"], "error: unknown parameter(s) 'Colour'"),
        (["--cron", "0 6 * * MON", "--catchup", "all"], "error: --catchup 'all': expected one of none, last"),
        (["--cron", "0 6 * * MON", "--overlap", "queue"], "error: --overlap 'queue': expected one of skip, allow"),
    ):
        made = cli("schedules", "create", "bad", "--pipeline", "pipeline.py", *args, cwd=project.root)
        assert made.returncode == 1 and made.stderr.startswith(message), made
        assert len(made.stderr.strip().splitlines()) == 1, made
    missing = cli("schedules", "create", "bad", "--pipeline", "nowhere.py", "--cron", "0 6 * * MON",
                  cwd=project.root)
    assert missing.returncode == 1 and "pipeline file 'nowhere.py' does not exist" in missing.stderr
    taken = cli("schedules", "create", "good", "--pipeline", "pipeline.py", "--cron", "0 7 * * MON",
                cwd=project.root)
    assert taken.returncode == 1 and "schedule 'good' already exists" in taken.stderr
    assert [s["name"] for s in json.loads(cli("schedules", "list", "--json", cwd=project.root).stdout)] == ["good"]
    assert len(project.store().list_pipeline_versions("echo")) == 1  # the changed file was never stored


def test_the_cli_over_a_server_prints_what_it_prints_against_the_store(
        cli: Cli, project: Project, server: RunningServer) -> None:
    write_project(project)
    (project.root / "inbox").mkdir()
    remote = {"FORGELINE_URL": server.url, "FORGELINE_TOKEN": server.token or ""}
    made = cli("schedules", "create", "weekly", "--pipeline", "pipeline.py", "--cron", "0 6 * * MON",
               "--timezone", "Europe/Berlin", "-p", "ModelType=xgb", cwd=project.root, env=remote)
    assert made.returncode == 0, made
    assert made.stdout.startswith("schedule weekly created: echo v1 at \"0 6 * * MON\" (Europe/Berlin), next ")
    made = cli("triggers", "create", "drops", "--pipeline", "pipeline.py", "--watch", "./inbox", "--pattern",
               "*.json", cwd=project.root, env=remote)
    assert made.returncode == 0, made
    for command in (("schedules", "list"), ("schedules", "describe", "weekly"), ("schedules", "list", "--json"),
                    ("schedules", "describe", "weekly", "--json"), ("triggers", "list"),
                    ("triggers", "describe", "drops", "--json")):
        local = cli(*command, cwd=project.root)
        over_server = cli(*command, cwd=project.root, env=remote)
        assert local.returncode == over_server.returncode == 0, (local, over_server)
        assert over_server.stdout == local.stdout, command
    assert cli("schedules", "pause", "weekly", cwd=project.root, env=remote).returncode == 0
    assert json.loads(cli("schedules", "describe", "weekly", "--json", cwd=project.root).stdout)[
        "schedule"]["paused"] is True
    operator = {**remote, "FORGELINE_TOKEN": server.token_for("operator")}
    refused = cli("schedules", "resume", "weekly", cwd=project.root, env=operator)
    assert refused.returncode == 1 and "admin" in refused.stderr and len(refused.stderr.splitlines()) == 1
    bad = cli("schedules", "create", "bad", "--pipeline", "pipeline.py", "--cron", "0 6 * * MON", "--timezone",
              "Mars/Base", cwd=project.root, env=remote)
    local_bad = cli("schedules", "create", "bad", "--pipeline", "pipeline.py", "--cron", "0 6 * * MON",
                    "--timezone", "Mars/Base", cwd=project.root)
    assert bad.returncode == local_bad.returncode == 1 and bad.stderr == local_bad.stderr
    taken = cli("triggers", "create", "drops", "--pipeline", "pipeline.py", "--watch", "./inbox",
                cwd=project.root, env=remote)
    assert taken.returncode == 1 and "trigger 'drops' already exists" in taken.stderr
    assert cli("triggers", "delete", "drops", cwd=project.root, env=remote).returncode == 0
    assert cli("schedules", "delete", "weekly", cwd=project.root, env=remote).returncode == 0
    assert json.loads(cli("triggers", "list", "--json", cwd=project.root).stdout) == []


GATED_PIPELINE = """
    from forgeline.workflow import ParameterString, Pipeline, ProcessingStep

    gate = ParameterString("Gate")
    pipeline = Pipeline(name="gated", parameters=[gate], steps=[
        ProcessingStep(name="Wait", code="wait.py", arguments=[gate])])
"""

# Says it started, then waits until the test creates the gate file.
WAIT = """
    import sys, time
    from pathlib import Path
    gate = Path(sys.argv[1])
    Path(str(gate) + ".started").touch()
    while not gate.exists():
        time.sleep(0.05)
"""


def test_overlap_skip_records_a_skipped_fire_while_the_previous_execution_still_runs(
        cli: Cli, project: Project, start_server: StartServer, tmp_path: Path) -> None:
    project.write("pipeline.py", GATED_PIPELINE)
    project.write("wait.py", WAIT)
    gate = tmp_path / "gate"
    made = cli("schedules", "create", "minutely", "--pipeline", "pipeline.py", "--cron", "* * * * *",
               "-p", f"Gate={gate}", cwd=project.root)
    assert made.returncode == 0, made
    clock = tmp_path / "clock"
    server = start_server(env={"FORGELINE_CLOCK_FILE": str(clock)})
    due = datetime.fromisoformat(schedule(server, "minutely")["next_fire_at"].replace("Z", "+00:00"))
    set_clock(clock, due + timedelta(seconds=1))
    [first] = wait_until(lambda: [f for f in fires(server, "minutely") if f["outcome"] != "pending"], timeout=60,
                         what="the first fire")
    assert first["outcome"] == "started"
    wait_until(lambda: Path(str(gate) + ".started").exists(), timeout=120, what="the first execution running")

    set_clock(clock, due + timedelta(minutes=1, seconds=1))
    second = wait_until(lambda: [f for f in fires(server, "minutely") if f["outcome"] != "pending"
                                 and f["due_at"] != first["due_at"]], timeout=60, what="the second fire")[0]
    assert second["outcome"] == "skipped" and second["execution_id"] is None
    assert f"previous execution {first['execution_id']} is still Executing" in second["reason"]
    described = cli("schedules", "describe", "minutely", cwd=project.root)
    assert "skipped" in described.stdout and first["execution_id"] in described.stdout

    gate.touch()
    wait_until(lambda: project.store().get_execution(first["execution_id"]).status.value == "Succeeded",
               timeout=120, what="the first execution's end")
    set_clock(clock, due + timedelta(minutes=2, seconds=1))
    third = wait_until(lambda: [f for f in fires(server, "minutely") if f["outcome"] != "pending"
                                and f["due_at"] not in (first["due_at"], second["due_at"])], timeout=60,
                       what="the third fire")[0]
    assert third["outcome"] == "started" and third["execution_id"] != first["execution_id"]
