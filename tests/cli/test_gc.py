"""`forgeline gc` and `forgeline executions delete` on the command line: arguments, errors and the report."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingOutput, ProcessingStep

    write = ProcessingStep(name="Write", code="write.py", outputs=[ProcessingOutput(output_name="out", source="out")])
    pipeline = Pipeline(name="tidy", steps=[write])
"""


@pytest.fixture
def finished(project, cli) -> str:
    project.write("write.py", "from pathlib import Path\nPath('out/data.bin').write_bytes(b'x' * 4096)\n")
    project.write("pipeline.py", PIPELINE)
    run = cli("run", "pipeline.py", cwd=project.root)
    assert run.returncode == 0, run
    return project.store().list_executions()[0].id


def one_line_error(run, *fragments: str) -> None:
    assert run.returncode == 1 and "Traceback" not in run.output, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run
    for fragment in fragments:
        assert fragment in lines[0], (fragment, run)


@pytest.mark.parametrize("age", ["30", "thirty days", "3x", "-2d"])
def test_an_unreadable_age_is_one_line_naming_the_option(finished, cli, project, age):
    one_line_error(cli("gc", "--older-than", age, cwd=project.root), "--older-than", repr(age), "30m, 2h, 3d or 1w")
    assert project.store().list_executions()[0].id == finished


def test_gc_needs_an_age(finished, cli, project):
    run = cli("gc", cwd=project.root)

    assert run.returncode == 2 and "--older-than" in run.output, run


def test_deleting_an_unknown_execution_names_it(finished, cli, project):
    one_line_error(cli("executions", "delete", "ffffffffffff", cwd=project.root), "ffffffffffff")


def test_a_prefix_deletes_the_one_execution_it_names_and_the_report_counts_bytes(finished, cli, project,
                                                                                 forgeline_home):
    dry = cli("executions", "delete", finished[:6], "--dry-run", cwd=project.root)
    deleted = cli("executions", "delete", finished[:6], cwd=project.root)

    assert dry.returncode == 0 and deleted.returncode == 0, (dry, deleted)
    assert f"would remove execution {finished}" in dry.stdout, dry
    assert re.search(r"would remove artifacts \S+/executions/" + finished + r"\s+\(4\.1 kB\)", dry.stdout), dry
    assert f"removed execution {finished}" in deleted.stdout, deleted
    assert re.search(r"^freed 4\.\d kB: 1 execution, 2 folders", deleted.stdout, flags=re.MULTILINE), deleted
    assert project.store().list_executions() == []
    assert not (forgeline_home / "artifacts" / "executions" / finished).exists()


def test_gc_without_a_store_says_where_it_looked(cli, project):
    one_line_error(cli("gc", "--older-than", "30d", cwd=project.root), "no forgeline metadata database")


def _age_code(home, days: float) -> None:
    """Make every stored snapshot file and checkout look written ``days`` ago (their real mtimes)."""
    then = time.time() - days * 86400
    for root in (home / "artifacts" / "snapshots", home / "code"):
        for path in [root, *root.rglob("*")]:
            os.utime(path, (then, then))


def test_gc_collects_the_code_snapshot_of_a_deleted_execution_and_unused_checkouts(finished, cli, project,
                                                                              forgeline_home):
    first = project.store().get_execution(finished).code_snapshot
    project.write("write.py", "from pathlib import Path\nPath('out/data.bin').write_bytes(b'y' * 4096)\n")
    second_run = cli("run", "pipeline.py", cwd=project.root)
    assert second_run.returncode == 0, second_run
    second = next(r for r in project.store().list_executions() if r.id != finished)
    assert second.code_snapshot not in (None, first)
    checkouts = forgeline_home / "code"
    assert sorted(path.name for path in checkouts.iterdir()) == sorted([first, second.code_snapshot])
    deleted = cli("executions", "delete", finished, cwd=project.root)
    assert deleted.returncode == 0, deleted

    young = cli("gc", "--older-than", "30d", "--dry-run", cwd=project.root)
    _age_code(forgeline_home, 2)
    dry = cli("gc", "--older-than", "30d", "--dry-run", cwd=project.root)
    done = cli("gc", "--older-than", "30d", cwd=project.root)

    assert young.returncode == dry.returncode == done.returncode == 0, (young, dry, done)
    assert "code snapshot" not in young.stdout and "checkout" not in young.stdout, young
    size = len("from pathlib import Path\nPath('out/data.bin').write_bytes(b'x' * 4096)\n")
    assert re.search(rf"^would remove code snapshot \S+/snapshots/manifests/{first}\.json", dry.stdout,
                     flags=re.MULTILINE), dry
    assert re.search(rf"^would remove code blob \S+/snapshots/blobs/\S+\s+\({size} B\)$", dry.stdout,
                     flags=re.MULTILINE), dry
    for snapshot in (first, second.code_snapshot):  # both executions have ended: no checkout is in use
        assert re.search(rf"^would remove checkout \S+/code/{snapshot}\s+\({size} B\)$", dry.stdout,
                         flags=re.MULTILINE), dry
    assert re.search(r"^would free .*: 0 executions, 1 code snapshot, 3 folders", dry.stdout, flags=re.MULTILINE), dry
    done_said = done.stdout.replace("removed", "would remove").replace("freed", "would free")
    assert done_said.replace("forgot", "would forget").splitlines() == [
        line.removesuffix(" (dry run: nothing was removed)") for line in dry.stdout.splitlines()]
    assert list(checkouts.iterdir()) == []
    manifests = forgeline_home / "artifacts" / "snapshots" / "manifests"
    assert sorted(path.name for path in manifests.iterdir()) == [f"{second.code_snapshot}.json"]
    described = cli("executions", "describe", second.id, cwd=project.root)
    assert f"snapshot {second.code_snapshot[:12]} (1 files, {size} B)" in described.stdout, described


def _backdate(table_name: str, column: str, days: float, **where: object) -> None:
    """Move rows' time back by ``days`` (what weeks of a running server would have left)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import create_engine, update

    from forgeline.config import Settings
    from forgeline.store.metadata import tables

    table = getattr(tables, table_name)
    engine = create_engine(Settings.from_env().database_url)
    try:
        with engine.begin() as connection:
            condition = [table.c[key] == value for key, value in where.items()]
            connection.execute(update(table).where(*condition).values(
                {column: datetime.now(UTC) - timedelta(days=days)}))
    finally:
        engine.dispose()


def test_gc_forgets_old_server_history_but_never_what_is_still_to_deliver_or_still_in_a_watched_folder(
        cli, project, tmp_path):
    """Old alarm events that ended go with their deliveries; pending ones stay. Old trigger files whose object
    left the folder are forgotten, those still there stay (they would start again). Old schedule fires go but
    each schedule's latest."""
    from datetime import UTC, datetime, timedelta

    from api.conftest import ECHO_PIPELINE, ECHO_SCRIPT
    from forgeline.store.metadata.alarm_store import AlarmDraft, AlarmEventDraft, DeliveryStatus
    from forgeline.store.metadata.schedule_store import FireOutcome
    from forgeline.store.metadata.trigger_store import ObjectOutcome
    from forgeline.triggers.watched_folders import WatchedFolder

    project.write("pipeline.py", ECHO_PIPELINE)
    project.write("echo.py", ECHO_SCRIPT)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for command in (["triggers", "create", "drops", "--pipeline", "pipeline.py", "--watch", str(inbox)],
                    ["schedules", "create", "hourly", "--pipeline", "pipeline.py", "--cron", "0 * * * *"]):
        assert cli(*command, cwd=project.root).returncode == 0
    store = project.store()
    store.create_alarm(AlarmDraft(name="failures", events=["step.failed"], targets=["command:true"]))
    events = {}
    for name in ("delivered", "failed", "pending", "recent"):
        events[name] = event = store.append_alarm_event(AlarmEventDraft("step.failed", name, {}))
        store.dispatch_alarm_event(event.id, [("failures", "command:true")])
        (delivery,) = [d for d in store.list_alarm_deliveries(10) if d.event_id == event.id]
        if name != "pending":
            store.record_delivery_attempt(delivery.id, error=None if name != "failed" else "exit 1",
                                          next_attempt_at=None)
    events["undispatched"] = store.append_alarm_event(AlarmEventDraft("step.failed", "undispatched", {}))
    (inbox / "still-here.json").write_text("{}")
    (here,) = WatchedFolder(str(inbox), "*").list()
    rows = store.claim_trigger_objects("drops", [(here.key, here.version), (str(inbox / "gone.json"), "1:2"),
                                                 (str(inbox / "stuck.json"), "1:2")])
    store.finish_trigger_objects([ObjectOutcome(row.id, FireOutcome.STARTED, execution_id="e")
                                  for row in rows if not row.key.endswith("stuck.json")])
    start = datetime(2026, 1, 5, 10, tzinfo=UTC)
    for hour in range(3):
        due = start + timedelta(hours=hour)
        assert store.claim_schedule_fire("hourly", due, due + timedelta(hours=1))
        store.finish_schedule_fire("hourly", due, FireOutcome.STARTED, execution_id=f"e{hour}")
    for name in ("delivered", "failed", "pending", "undispatched"):
        _backdate("alarm_events", "created_at", 40, id=events[name].id)
    _backdate("trigger_objects", "seen_at", 40)
    store.close()

    dry = cli("gc", "--older-than", "30d", "--dry-run", cwd=project.root)
    line = ("would forget server history older than 30d: 2 alarm events (2 deliveries), 1 trigger file no "
            "longer there, 2 schedule fires")
    assert dry.returncode == 0 and line in dry.stdout, dry
    store = project.store()
    assert len(store.list_alarm_deliveries(50)) == 4 and len(store.list_trigger_objects("drops", limit=50)) == 3
    store.close()

    done = cli("gc", "--older-than", "30d", cwd=project.root, env={"FORGELINE_HISTORY_RETENTION": "30d"})
    assert done.returncode == 0 and line.replace("would forget", "forgot") in done.stdout, done
    store = project.store()
    assert sorted((d.event_subject, d.status) for d in store.list_alarm_deliveries(50)) == [
        ("pending", DeliveryStatus.PENDING), ("recent", DeliveryStatus.DELIVERED)]
    assert [e.subject for e in store.list_undispatched_alarm_events(10)] == ["undispatched"]
    assert sorted(Path(row.key).name for row in store.list_trigger_objects("drops", limit=50)) == [
        "still-here.json", "stuck.json"]
    assert [fire.due_at for fire in store.list_schedule_fires("hourly")] == [start + timedelta(hours=2)]
    store.close()
    one_line_error(cli("gc", "--older-than", "30d", "--history-older-than", "soon", cwd=project.root),
                   "--history-older-than", "'soon'")
