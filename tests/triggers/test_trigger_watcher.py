"""TriggerWatcher on a real local folder and on moto's S3 server: one execution per new object, rejections.

Executions are started Queued in a real store (no launcher runs them here); each poll is one ``tick()``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_until
from forgeline.errors import StaleLeaseError, TriggerError
from forgeline.store.metadata.records import ExecutionRecord
from forgeline.triggers.definitions import TriggerSpec, create_trigger
from forgeline.triggers.schedule_runner import RunnerTiming
from forgeline.triggers.starting import QueuedStarter
from forgeline.triggers.trigger_watcher import TRIGGERS_LEASE, TriggerWatcher
from forgeline.triggers.watched_folders import matches

from .conftest import StallingStarter, Stored


def make_watcher(stored: Stored, options: dict[str, Any] | None = None) -> TriggerWatcher:
    return TriggerWatcher(stored.runtime.store, QueuedStarter(stored.runtime), "test",
                          options_by_protocol=options or {})


def drop(folder: Path, name: str, content: str, age_seconds: float = 10.0) -> Path:
    """Write a file as an exporter would (whole, then renamed into place), dated ``age_seconds`` ago."""
    path = folder / name
    partial = folder / f".{name}.partial"
    partial.write_text(content)
    os.replace(partial, path)
    moment = path.stat().st_mtime - age_seconds
    os.utime(path, (moment, moment))
    return path


def executions(stored: Stored) -> list[ExecutionRecord]:
    return sorted(stored.runtime.store.list_executions("echo", limit=10_000), key=lambda r: r.created_at)


def test_each_new_file_starts_one_execution_with_its_parameters_and_uri(stored: Stored) -> None:
    inbox = stored.root / "inbox"
    inbox.mkdir()
    create_trigger(stored.runtime.store, TriggerSpec("drops", str(inbox), "*.json", 0.1, {"Rows": "5"}),
                   stored.pipeline, {})
    watcher = make_watcher(stored)
    first = drop(inbox, "a.json", json.dumps({"pipeline_parameters": {"ModelType": "xgb"}, "note": "ignored"}))
    drop(inbox, "ignored.txt", "not matched by the pattern")
    handled = watcher.poll(stored.runtime.store.get_trigger("drops"))
    assert [(row.key, row.outcome.value) for row in handled] == [(str(first), "started")]
    [execution] = executions(stored)
    assert execution.parameters["ModelType"] == "xgb" and execution.parameters["Rows"] == 5
    assert execution.started_by is not None and execution.started_by["uri"] == str(first)
    assert execution.started_by["kind"] == "trigger" and execution.started_by["name"] == "drops"

    assert watcher.poll(stored.runtime.store.get_trigger("drops")) == []  # seen: nothing new
    assert make_watcher(stored).poll(stored.runtime.store.get_trigger("drops")) == []  # nor after a restart

    drop(inbox, "a.json", json.dumps({"pipeline_parameters": {"ModelType": "lr", "Rows": 7}}), age_seconds=5)
    rewritten = watcher.poll(stored.runtime.store.get_trigger("drops"))  # a new version of the same key
    assert [row.outcome.value for row in rewritten] == ["started"]
    assert executions(stored)[-1].parameters["ModelType"] == "lr"
    trigger = stored.runtime.store.get_trigger("drops")
    assert trigger.objects_seen == 2 and trigger.last_execution_id == executions(stored)[-1].id


def test_a_yaml_file_works_like_json(stored: Stored) -> None:
    inbox = stored.root / "inbox"
    inbox.mkdir()
    create_trigger(stored.runtime.store, TriggerSpec("drops", str(inbox), "*.yaml", 0.1), stored.pipeline, {})
    drop(inbox, "b.yaml", "pipeline_parameters:\n  ModelType: rf\n  Rows: 3\nexported_by: warehouse\n")
    [row] = make_watcher(stored).poll(stored.runtime.store.get_trigger("drops"))
    assert row.outcome.value == "started"
    assert executions(stored)[0].parameters == {"ModelType": "rf", "Rows": 3}


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("broken.json", '{"pipeline_parameters": {"ModelType": ', "not valid JSON"),
    ("list.json", "[1, 2]", "expected a mapping with 'pipeline_parameters', got a list"),
    ("unknown.json", '{"pipeline_parameters": {"Colour": "red"}}', "unknown parameter(s) 'Colour'"),
    ("badtype.json", '{"pipeline_parameters": {"Rows": "many"}}', "Rows"),
    ("broken.yaml", "pipeline_parameters: [unclosed", "not valid JSON or YAML"),
])
def test_an_invalid_file_starts_nothing_and_raises_a_trigger_rejected_alarm_event(
        stored: Stored, name: str, content: str, reason: str) -> None:
    inbox = stored.root / "inbox"
    inbox.mkdir()
    create_trigger(stored.runtime.store, TriggerSpec("drops", str(inbox), "*", 0.1), stored.pipeline, {})
    path = drop(inbox, name, content)
    [row] = make_watcher(stored).poll(stored.runtime.store.get_trigger("drops"))
    assert row.outcome.value == "rejected" and reason in (row.reason or "")
    assert executions(stored) == []
    events = [event for event in _alarm_events(stored) if event["kind"] == "trigger.rejected"]
    assert len(events) == 1
    assert events[0]["subject"] == "drops"
    assert events[0]["payload"]["uri"] == str(path) and reason in events[0]["payload"]["reason"]
    assert make_watcher(stored).poll(stored.runtime.store.get_trigger("drops")) == []  # rejected once only


def test_a_file_still_being_written_is_looked_at_again_rather_than_rejected(stored: Stored) -> None:
    inbox = stored.root / "inbox"
    inbox.mkdir()
    create_trigger(stored.runtime.store, TriggerSpec("drops", str(inbox), "*.json", 0.1), stored.pipeline, {})
    watcher = make_watcher(stored)
    partial = inbox / "c.json"
    partial.write_text('{"pipeline_parameters": {"Mod')  # just written: fresh, does not parse yet
    assert watcher.poll(stored.runtime.store.get_trigger("drops")) == []
    drop(inbox, "c.json", '{"pipeline_parameters": {"ModelType": "gbm"}}')
    assert [row.outcome.value for row in watcher.poll(stored.runtime.store.get_trigger("drops"))] == ["started"]


def test_an_object_left_pending_by_a_dead_watcher_starts_once(stored: Stored) -> None:
    store = stored.runtime.store
    inbox = stored.root / "inbox"
    inbox.mkdir()
    create_trigger(store, TriggerSpec("drops", str(inbox), "*.json", 0.1), stored.pipeline, {})
    lost = drop(inbox, "lost.json", '{"pipeline_parameters": {"ModelType": "a"}}')
    started = drop(inbox, "started.json", '{"pipeline_parameters": {"ModelType": "b"}}')
    items = {item.key: item for item in make_watcher(stored)._folder(store.get_trigger("drops")).list()}
    # A watcher claimed both, started the second, and died before recording either outcome:
    lost_row = store.claim_trigger_object("drops", str(lost), items[str(lost)].version)
    started_row = store.claim_trigger_object("drops", str(started), items[str(started)].version)
    assert lost_row is not None and started_row is not None
    execution_id = QueuedStarter(stored.runtime).start(stored.pipeline, {"ModelType": "b"}, {
        "kind": "trigger", "name": "drops", "uri": str(started), "object_id": started_row.id})

    make_watcher(stored).tick()
    rows = {row.key: row for row in store.list_trigger_objects("drops")}
    assert rows[str(started)].outcome.value == "started" and rows[str(started)].execution_id == execution_id
    assert rows[str(lost)].outcome.value == "started" and rows[str(lost)].execution_id
    assert sorted(record.parameters["ModelType"] for record in executions(stored)) == ["a", "b"]


def test_a_thousand_files_at_once_each_start_one_queued_execution(stored: Stored) -> None:
    inbox = stored.root / "inbox"
    inbox.mkdir()
    create_trigger(stored.runtime.store, TriggerSpec("drops", str(inbox), "*.json", 0.1), stored.pipeline, {})
    for index in range(1000):
        drop(inbox, f"{index:04d}.json", json.dumps({"pipeline_parameters": {"Rows": index}}))
    handled = make_watcher(stored).poll(stored.runtime.store.get_trigger("drops"))
    assert len(handled) == 1000 and {row.outcome.value for row in handled} == {"started"}
    records = executions(stored)
    assert sorted(record.parameters["Rows"] for record in records) == list(range(1000))
    assert {record.status.value for record in records} == {"Queued"}


def test_an_s3_prefix_on_moto_starts_one_execution_per_object_and_etag(stored: Stored, s3_endpoint: str,
                                                                        s3_bucket: str) -> None:
    import boto3

    options = {"s3": {"endpoint_url": s3_endpoint}}
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    watch = f"s3://{s3_bucket}/exports/training/"
    record = create_trigger(stored.runtime.store, TriggerSpec("exports", watch, "*.json", 0.1), stored.pipeline,
                            options)
    assert record.watch == watch
    s3.put_object(Bucket=s3_bucket, Key="exports/training/w1.json",
                  Body=b'{"pipeline_parameters": {"ModelType": "hgb", "Rows": 2}}')
    s3.put_object(Bucket=s3_bucket, Key="exports/other/w1.json", Body=b"{}")  # outside the prefix
    watcher = make_watcher(stored, options)
    [row] = watcher.poll(stored.runtime.store.get_trigger("exports"))
    assert row.outcome.value == "started"
    [execution] = executions(stored)
    assert execution.started_by is not None
    assert execution.started_by["uri"] == f"s3://{s3_bucket}/exports/training/w1.json"
    assert watcher.poll(stored.runtime.store.get_trigger("exports")) == []
    s3.put_object(Bucket=s3_bucket, Key="exports/training/w1.json",
                  Body=b'{"pipeline_parameters": {"ModelType": "xgb"}}')  # rewritten: a new ETag
    assert [row.outcome.value for row in watcher.poll(stored.runtime.store.get_trigger("exports"))] == ["started"]
    assert len(executions(stored)) == 2
    with pytest.raises(TriggerError, match="^--watch 's3://no-such-bucket/x/': no bucket 'no-such-bucket' there$"):
        create_trigger(stored.runtime.store, TriggerSpec("missing", "s3://no-such-bucket/x/"), stored.pipeline,
                       options)


@pytest.mark.parametrize(("spec", "message"), [
    (TriggerSpec("x", "./nowhere"), "--watch './nowhere': no such folder"),
    (TriggerSpec("x", "ftpx://host/folder"), "--watch 'ftpx://host/folder': expected a local folder or a URL"),
    (TriggerSpec("x", "s3://"), "--watch 's3://': expected a local folder or a URL"),
    (TriggerSpec("x", ".", pattern="a/*.json"), "--pattern 'a/*.json'"),
    (TriggerSpec("x", ".", poll_seconds=0), "--poll-seconds 0"),
])
def test_bad_input_is_refused_in_one_line_and_nothing_is_stored(stored: Stored, spec: TriggerSpec,
                                                                 message: str) -> None:
    with pytest.raises(TriggerError) as raised:
        create_trigger(stored.runtime.store, spec, stored.pipeline, {})
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
    assert stored.runtime.store.list_triggers() == []


def _alarm_events(stored: Stored) -> list[dict[str, Any]]:
    from sqlalchemy import create_engine, select

    from forgeline.store.metadata.tables import alarm_events

    engine = create_engine(stored.runtime.settings.database_url)
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(select(alarm_events))]
    finally:
        engine.dispose()


def test_a_file_caught_between_its_write_and_its_rename_starts_one_execution_under_its_final_name(
        stored: Stored) -> None:
    """A complete file under the writer's temporary name (listed just before its rename) is not an object."""
    inbox = stored.root / "inbox"
    inbox.mkdir()
    create_trigger(stored.runtime.store, TriggerSpec("drops", str(inbox), "*", 0.1), stored.pipeline, {})
    watcher = make_watcher(stored)
    document = json.dumps({"pipeline_parameters": {"ModelType": "xgb"}})
    temporary = [inbox / name for name in (".a.json.partial", "b.json.tmp", "c.json~", ".d.json")]
    for path in temporary:
        path.write_text(document)  # complete and valid, only not renamed yet
    assert watcher.poll(stored.runtime.store.get_trigger("drops")) == []
    for path in temporary:
        os.replace(path, inbox / path.name.strip(".").removesuffix(".partial").removesuffix(".tmp").rstrip("~"))
    handled = watcher.poll(stored.runtime.store.get_trigger("drops"))
    assert sorted(Path(row.key).name for row in handled) == ["a.json", "b.json", "c.json", "d.json"]
    assert sorted(Path((record.started_by or {})["uri"]).name for record in executions(stored)) == [
        "a.json", "b.json", "c.json", "d.json"]
    assert watcher.poll(stored.runtime.store.get_trigger("drops")) == []


@pytest.mark.parametrize(("name", "pattern", "counts"), [
    ("a.json", "*", True), (".a.json", "*", False), (".a.json", ".*", True), ("a.json.partial", "*", False),
    ("a.json.partial", "*.partial", True), ("a.csv.tmp", "*.csv*", False), ("report~", "*", False),
    ("a.json", "*.json", True), (".a.json.partial", "*.json", False),
])
def test_hidden_and_in_progress_names_count_only_for_a_pattern_that_names_them(name: str, pattern: str,
                                                                              counts: bool) -> None:
    assert matches(name, pattern) is counts


def test_a_watcher_that_stalled_past_its_lease_has_its_starts_refused_and_each_file_starts_once(
        stored: Stored) -> None:
    """Watcher a claims three files and stalls before starting them; its lease expires and b takes the duty
    over, finishing the rows a left pending. When a wakes up, its start is refused by the lease's epoch."""
    store = stored.runtime.store
    inbox = stored.root / "inbox"
    inbox.mkdir()
    create_trigger(store, TriggerSpec("drops", str(inbox), "*.json", 0.1), stored.pipeline, {})
    for name in ("a", "b", "c"):
        drop(inbox, f"{name}.json", json.dumps({"pipeline_parameters": {"ModelType": name}}))
    handled_by_b: list[Any] = []

    def take_over() -> None:
        epoch = wait_until(lambda: store.hold_lease(TRIGGERS_LEASE, "b", 60), timeout=120,
                           what="a's short lease expired and b holding it")
        with store.lease_fence(TRIGGERS_LEASE, epoch):
            handled_by_b.extend(TriggerWatcher(store, QueuedStarter(stored.runtime), "b").tick())

    stalled = TriggerWatcher(store, StallingStarter(stored.runtime, take_over), "a",
                             timing=RunnerTiming(tick_seconds=0.1, lease_seconds=0.2))
    epoch = store.hold_lease(TRIGGERS_LEASE, "a", 0.2)
    assert epoch == 1
    with store.lease_fence(TRIGGERS_LEASE, epoch), pytest.raises(StaleLeaseError, match="held by b"):
        stalled.tick()
    rows = store.list_trigger_objects("drops")
    assert sorted((Path(row.key).name, row.outcome.value) for row in rows) == [
        ("a.json", "started"), ("b.json", "started"), ("c.json", "started")]
    records = executions(stored)
    assert sorted(record.parameters["ModelType"] for record in records) == ["a", "b", "c"]  # none twice
    assert {row.execution_id for row in rows} == {record.id for record in records}
    assert not store.acquire_lease(TRIGGERS_LEASE, "a", 0.2)  # b holds the duty: a acts no more
