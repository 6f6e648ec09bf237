"""File triggers in a real ``forgeline server``: a dropped file in a local folder or on moto's S3 server starts
one execution with its parameters and URI; an invalid file starts nothing and leaves a trigger.rejected alarm
event; a SIGKILLed server restarted mid-stream starts every file exactly once; a thousand files are all started
while the queue launcher keeps to max_concurrent_executions. Every wait polls the API or the store.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from api.conftest import ECHO_PIPELINE, ECHO_SCRIPT, RunningServer, StartServer
from conftest import S3_ENV, Cli, Project, wait_until
from forgeline.store.metadata.records import ExecutionStatus


def drop(folder: Path, name: str, document: Any) -> Path:
    """Write a trigger file whole, then rename it into the watched folder, as an exporter should."""
    path = folder / name
    partial = folder / f".{name}.partial"
    partial.write_text(document if isinstance(document, str) else json.dumps(document))
    os.replace(partial, path)
    return path


def objects(server: RunningServer, name: str, limit: int = 10_000) -> list[dict[str, Any]]:
    with server.client() as client:
        response = client.get(f"/triggers/{name}/objects", params={"limit": limit})
        assert response.status_code == 200, response.text
        return list(response.json())


def settle(server: RunningServer, name: str, count: int, timeout: float = 120) -> list[dict[str, Any]]:
    """The trigger's objects once ``count`` of them have a final outcome."""
    return list(wait_until(lambda: (rows := objects(server, name)) and
                           len([row for row in rows if row["outcome"] != "pending"]) >= count and rows,
                           timeout=timeout, what=f"{count} files of trigger {name} handled"))


def setup_project(project: Project) -> Path:
    project.write("pipeline.py", ECHO_PIPELINE)
    project.write("echo.py", ECHO_SCRIPT)
    inbox = project.root / "inbox"
    inbox.mkdir()
    return inbox


def test_a_dropped_file_starts_its_execution_with_its_parameters_and_uri_and_a_bad_one_is_rejected(
        cli: Cli, project: Project, server: RunningServer) -> None:
    inbox = setup_project(project)
    out = project.root / "out"
    made = cli("triggers", "create", "new-exports", "--pipeline", "pipeline.py", "--watch", "./inbox",
               "--pattern", "*.json", "--poll-seconds", "0.2", "-p", f"Out={out}", cwd=project.root)
    assert made.returncode == 0, made
    good = drop(inbox, "bag.json", {"pipeline_parameters": {"ModelType": "xgb"}, "exported_by": "warehouse"})
    drop(inbox, "notes.txt", "not a trigger file: the pattern leaves it out")
    [row] = settle(server, "new-exports", 1)
    assert row["outcome"] == "started" and row["key"] == str(good)
    written = wait_until(lambda: (out / f"{row['execution_id']}.json").exists() and
                         out / f"{row['execution_id']}.json", timeout=120, what="the triggered step")
    assert json.loads(written.read_text()) == {"model": "xgb", "uri": str(good)}

    bad = drop(inbox, "broken.json", '{"pipeline_parameters": {"ModelType": ')
    unknown = drop(inbox, "colour.json", {"pipeline_parameters": {"Colour": "red"}})
    rows = {r["key"]: r for r in settle(server, "new-exports", 3)}
    assert rows[str(bad)]["outcome"] == "rejected" and "not valid JSON" in rows[str(bad)]["reason"]
    assert rows[str(unknown)]["outcome"] == "rejected" and "'Colour'" in rows[str(unknown)]["reason"]
    assert len(project.store().list_executions("echo")) == 1
    rejected = [event for event in alarm_events(project) if event["kind"] == "trigger.rejected"]
    assert sorted(event["payload"]["uri"] for event in rejected) == sorted([str(bad), str(unknown)])
    assert {event["subject"] for event in rejected} == {"new-exports"}

    described = cli("triggers", "describe", "new-exports", cwd=project.root)
    assert described.returncode == 0 and "rejected" in described.stdout and row["execution_id"] in described.stdout
    listed = cli("triggers", "list", "--json", cwd=project.root)
    with server.client("viewer") as client:
        assert json.loads(listed.stdout) == client.get("/triggers").json()


def test_a_paused_trigger_waits_and_handles_the_files_on_resume(cli: Cli, project: Project,
                                                                 server: RunningServer) -> None:
    inbox = setup_project(project)
    assert cli("triggers", "create", "drops", "--pipeline", "pipeline.py", "--watch", str(inbox),
               "--poll-seconds", "0.2", cwd=project.root).returncode == 0
    with server.client() as admin:
        assert admin.post("/triggers/drops/pause").json()["paused"] is True
        with server.client("operator") as operator:
            assert operator.post("/triggers/drops/resume").status_code == 403
        drop(inbox, "a.json", {"pipeline_parameters": {}})
        # The running server's next polls see the trigger paused; a marker trigger shows they happened.
        marker = project.root / "marker"
        marker.mkdir()
        assert cli("triggers", "create", "marker", "--pipeline", "pipeline.py", "--watch", str(marker),
                   "--poll-seconds", "0.2", cwd=project.root).returncode == 0
        drop(marker, "m.json", {"pipeline_parameters": {}})
        settle(server, "marker", 1)
        assert objects(server, "drops") == []
        assert admin.post("/triggers/drops/resume").json()["paused"] is False
    assert [row["outcome"] for row in settle(server, "drops", 1)] == ["started"]


def test_an_s3_prefix_on_moto_starts_one_execution_per_new_object(
        cli: Cli, project: Project, start_server: StartServer, s3_endpoint: str, s3_bucket: str) -> None:
    import boto3

    setup_project(project)
    env = {**S3_ENV, "FORGELINE_STORAGE_OPTIONS": json.dumps({"s3": {"endpoint_url": s3_endpoint}}),
           "NO_PROXY": "127.0.0.1"}
    made = cli("triggers", "create", "exports", "--pipeline", "pipeline.py", "--watch",
               f"s3://{s3_bucket}/exports/training/", "--pattern", "*.json", "--poll-seconds", "0.2",
               cwd=project.root, env=env)
    assert made.returncode == 0, made
    server = start_server(env=env)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.put_object(Bucket=s3_bucket, Key="exports/training/week-48.json",
                  Body=json.dumps({"pipeline_parameters": {"ModelType": "hgb"}}).encode())
    [row] = settle(server, "exports", 1)
    assert row["outcome"] == "started"
    record = project.store().get_execution(row["execution_id"])
    assert record.started_by["uri"] == f"s3://{s3_bucket}/exports/training/week-48.json"
    assert record.parameters["ModelType"] == "hgb"
    s3.put_object(Bucket=s3_bucket, Key="exports/training/week-48.json",  # rewritten: a new ETag, a new run
                  Body=json.dumps({"pipeline_parameters": {"ModelType": "lr"}}).encode())
    settle(server, "exports", 2)
    assert sorted(r.parameters["ModelType"] for r in project.store().list_executions("echo")) == ["hgb", "lr"]


def test_a_server_killed_mid_stream_and_restarted_starts_every_file_exactly_once(
        cli: Cli, project: Project, start_server: StartServer) -> None:
    inbox = setup_project(project)
    assert cli("triggers", "create", "drops", "--pipeline", "pipeline.py", "--watch", str(inbox),
               "--poll-seconds", "0.2", cwd=project.root).returncode == 0
    env = {"FORGELINE_MAX_CONCURRENT_EXECUTIONS": "1"}
    first = start_server(env=env)
    names = [f"{index:03d}.json" for index in range(600)]
    for name in names:
        drop(inbox, name, {"pipeline_parameters": {"ModelType": name}})
    wait_until(lambda: objects(first, "drops", limit=1), timeout=120, what="the first file handled")
    first.stop(signal.SIGKILL)
    handled_before_the_kill = len(project.store().list_trigger_objects("drops", limit=10_000))
    assert 0 < handled_before_the_kill < len(names)  # killed mid-stream
    second = start_server(env=env)
    rows = settle(second, "drops", len(names), timeout=240)
    assert len(rows) == len(names) and {row["outcome"] for row in rows} == {"started"}
    records = project.store().list_executions("echo", limit=10_000)
    uris = Counter((record.started_by or {}).get("uri") for record in records)
    assert uris == Counter({str(inbox / name): 1 for name in names})  # none twice, none lost
    assert sorted(record.parameters["ModelType"] for record in records) == names


def test_a_thousand_files_at_once_all_start_with_max_concurrent_executions_respected(
        cli: Cli, project: Project, start_server: StartServer) -> None:
    inbox = setup_project(project)
    assert cli("triggers", "create", "drops", "--pipeline", "pipeline.py", "--watch", str(inbox),
               "--poll-seconds", "0.2", cwd=project.root).returncode == 0
    server = start_server(env={"FORGELINE_MAX_CONCURRENT_EXECUTIONS": "2"})
    for index in range(1000):
        drop(inbox, f"{index:04d}.json", {"pipeline_parameters": {"ModelType": f"m{index}"}})
    store = project.store()
    peak = 0

    def all_started() -> bool:
        nonlocal peak
        running = store.list_executions("echo", limit=10_000, statuses=[ExecutionStatus.EXECUTING])
        peak = max(peak, len(running))
        return len([row for row in objects(server, "drops") if row["outcome"] == "started"]) == 1000

    wait_until(all_started, timeout=300, interval=0.2, what="1000 files started")
    records = store.list_executions("echo", limit=10_000)
    assert len(records) == 1000
    assert sorted(record.parameters["ModelType"] for record in records) == sorted(f"m{i}" for i in range(1000))
    wait_until(lambda: len(store.list_executions("echo", limit=10_000, statuses=[ExecutionStatus.SUCCEEDED])) >= 3,
               timeout=180, what="the queue launcher running some of them")
    for _ in range(20):  # while the queue drains, never more than the limit run at once
        all_started()
    assert 1 <= peak <= 2


def alarm_events(project: Project) -> list[dict[str, Any]]:
    from sqlalchemy import create_engine, select

    from forgeline.config import Settings
    from forgeline.store.metadata.tables import alarm_events as table

    engine = create_engine(Settings.from_env().database_url)
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(select(table))]
    finally:
        engine.dispose()


def lease_holders(project: Project) -> dict[str, str]:
    """Who holds each duty lease now, read from the store's server_leases rows (expired ones left out)."""
    from datetime import UTC, datetime

    from sqlalchemy import create_engine, select

    from forgeline.config import Settings
    from forgeline.store.metadata.tables import server_leases as table

    engine = create_engine(Settings.from_env().database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(table.c.name, table.c.owner, table.c.expires_at)).all()
    finally:
        engine.dispose()
    now = datetime.now(UTC)
    return {row.name: row.owner for row in rows if row.expires_at > now}


def store_writable(project: Project) -> bool:
    """Whether another process can take the SQLite store's write lock now (one stopped inside a write holds it)."""
    import sqlite3

    from forgeline.config import Settings

    connection = sqlite3.connect(Settings.from_env().database_url.removeprefix("sqlite:///"), timeout=5,
                                 isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


def stopped(pid: int) -> bool:
    """Whether every thread of the process is stopped (a signal takes effect at once only on an idle machine)."""
    states = [(Path("/proc") / str(pid) / "task" / task / "stat").read_text().rsplit(")", 1)[1].split()[0]
              for task in os.listdir(Path("/proc") / str(pid) / "task")]
    return all(state in ("T", "t") for state in states)


def stop_outside_a_write(server: RunningServer, project: Project) -> None:
    """SIGSTOP the server at a moment it holds no write transaction: stopped inside one, it would keep every
    process from writing (the takeover too) until it wakes; then it is woken and stopped again."""
    for _ in range(50):
        server.process.send_signal(signal.SIGSTOP)
        wait_until(lambda: stopped(server.process.pid), timeout=120, what="every thread of the server stopped")
        if store_writable(project):
            return
        server.process.send_signal(signal.SIGCONT)
        wait_until(lambda: store_writable(project), timeout=120, what="the woken server's write finished")
    raise AssertionError("the server was inside a write transaction every time it was stopped")


def test_a_server_stopped_past_its_lease_acts_no_more_once_another_took_over(
        cli: Cli, project: Project, start_server: StartServer) -> None:
    """SIGSTOP the server polling a stream of files; the other takes the triggers duty over when the lease
    expires; SIGCONT: the woken one's writes under its old epoch are refused, it does not take the duty back
    while the other holds it, and every file starts once. When the other stops, it takes over again."""
    inbox = setup_project(project)
    assert cli("triggers", "create", "drops", "--pipeline", "pipeline.py", "--watch", str(inbox),
               "--poll-seconds", "0.2", cwd=project.root).returncode == 0
    env = {"FORGELINE_MAX_CONCURRENT_EXECUTIONS": "1"}
    first = start_server(env=env)
    first_owner = wait_until(lambda: lease_holders(project).get("triggers"), timeout=120,
                             what="the first server holding the triggers lease")
    second = start_server(env=env)
    names = [f"{index:03d}.json" for index in range(300)]
    for name in names:
        drop(inbox, name, {"pipeline_parameters": {"ModelType": name}})
    wait_until(lambda: objects(first, "drops", limit=1), timeout=120, what="the first file handled")
    stop_outside_a_write(first, project)
    try:
        second_owner = wait_until(lambda: (owner := lease_holders(project).get("triggers")) != first_owner
                                  and owner, timeout=180, what="the second server taking the triggers duty over")
    finally:
        first.process.send_signal(signal.SIGCONT)
    rows = settle(second, "drops", len(names), timeout=240)
    later = drop(inbox, "later.json", {"pipeline_parameters": {"ModelType": "later.json"}})
    wait_until(lambda: any(row["key"] == str(later) and row["outcome"] == "started"
                           for row in objects(second, "drops")), timeout=120, what="a file dropped after SIGCONT")
    assert lease_holders(project).get("triggers") == second_owner  # the woken server did not take it back
    assert first.process.poll() is None, first.log()  # alive, only no longer the holder
    rows = objects(second, "drops")
    records = project.store().list_executions("echo", limit=10_000)
    uris = Counter((record.started_by or {}).get("uri") for record in records)
    assert uris == Counter({str(inbox / name): 1 for name in [*names, "later.json"]})  # none twice, none lost
    assert len(rows) == len(names) + 1 and {row["outcome"] for row in rows} == {"started"}

    second.stop()  # gives its leases up: the first one holds the duty again, at a new epoch, and acts
    wait_until(lambda: lease_holders(project).get("triggers") == first_owner, timeout=120,
               what="the first server taking the duty back")
    last = drop(inbox, "last.json", {"pipeline_parameters": {"ModelType": "last.json"}})
    wait_until(lambda: any(row["key"] == str(last) and row["outcome"] == "started"
                           for row in objects(first, "drops")), timeout=120, what="the first server acting again")
