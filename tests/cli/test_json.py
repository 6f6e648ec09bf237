"""Every read command takes ``--json``, and every record comes out in the one serialised form of the store."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone

from forgeline.registry.comparison import MetricDifference, MetricsComparison
from forgeline.store.metadata.records import ExecutionRecord, ExecutionStatus, StepAttempt, StepStatus
from forgeline.store.metadata.serialise import dumps, serialise


def as_json(cli, *args: str, cwd=None):
    shown = cli(*args, "--json", **({"cwd": cwd} if cwd else {}))
    assert shown.returncode == 0, shown
    return json.loads(shown.stdout)


def json_lines(cli, *args: str, cwd):
    shown = cli(*args, "--json", cwd=cwd)
    assert shown.returncode == 0, shown
    return [json.loads(line) for line in shown.stdout.splitlines()]


def includes(document: dict, record: dict) -> bool:
    """The document carries every field of the serialised record, equal (other edges may add fields)."""
    return all(document.get(key) == value for key, value in record.items())


def test_executions_list_and_describe(reporting, cli):
    store, root = reporting.project.store(), reporting.project.root

    listed = as_json(cli, "executions", "list", cwd=root)
    records = store.list_executions()
    assert [doc["id"] for doc in listed] == [r.id for r in records]
    assert all(includes(doc, serialise(r)) for doc, r in zip(listed, records))
    assert {doc["status"] for doc in listed} == {"Succeeded", "Failed"}

    described = as_json(cli, "executions", "describe", reporting.failed, cwd=root)
    assert includes(described, serialise(store.get_execution(reporting.failed)))
    assert described["failure_reason"].endswith("rows 4, 9 and 12 of part-00001.csv")  # whole, both lines
    assert described["steps"] == serialise(store.list_step_runs(reporting.failed))
    assert described["attempts"] == serialise(store.list_attempts(reporting.failed))
    assert datetime.fromisoformat(described["created_at"]).tzinfo is not None


def test_logs_and_metrics_print_json_lines(reporting, cli):
    root = reporting.project.root
    lines = json_lines(cli, "logs", reporting.succeeded, "Hello", cwd=root)
    assert [line["text"] for line in lines] == ["hello from ok"]
    assert {(line["execution_id"], line["step_name"], line["attempt"]) for line in lines} == {
        (reporting.succeeded, "Hello", 1)}

    points = json_lines(cli, "metrics", reporting.succeeded, "Train", cwd=root)
    stored = reporting.project.store().list_metric_points(reporting.succeeded, "Train")
    assert points == serialise(stored)
    assert [p["value"] for p in points] == [0.75, 0.875]


def test_pipelines_and_plan(reporting, cli):
    root = reporting.project.root
    store = reporting.project.store()

    assert as_json(cli, "pipelines", "list", cwd=root) == serialise(store.list_pipelines())
    shown = as_json(cli, "pipelines", "show", "reporting", cwd=root)
    assert includes(shown, serialise(store.get_pipeline_version("reporting")))
    assert [v["version"] for v in shown["versions"]] == [1] and "definition" not in shown["versions"][0]

    planned = as_json(cli, "plan", "pipeline.py", cwd=root)
    assert [(item["name"], item["decision"]) for item in planned][:3] == [
        ("Hello", "MISS"), ("Train", "MISS"), ("Gate", "RUN")]
    assert all(isinstance(item["reasons"], list) for item in planned)


def test_model_registry(registered, cli):
    registry = registered.registry

    assert as_json(cli, "models", "groups") == serialise(registry.groups())
    assert as_json(cli, "models", "list", "customer-churn") == serialise(registry.list("customer-churn"))
    described = as_json(cli, "models", "describe", "customer-churn", "2")
    assert described == serialise(registry.describe("customer-churn", 2))
    assert described["package"]["approval_status"] == "Approved"
    assert [e["to_status"] for e in described["history"]] == ["PendingManualApproval", "Approved"]
    compared = as_json(cli, "models", "compare", "customer-churn", "1", "2")
    assert compared["metrics"][0]["name"] == "metrics.accuracy.value"
    assert round(compared["metrics"][0]["difference"], 6) == 0.05
    events = as_json(cli, "models", "events")
    assert events == serialise(registry.events(None, limit=50))


def test_the_serialiser_gives_every_field_in_json_form():
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    record = ExecutionRecord(id="abc", pipeline_name="p", pipeline_version=1, status=ExecutionStatus.FAILED,
                             parameters={"Ratio": 0.5, "Tags": ["a"]}, work_dir="/w", created_at=moment)
    doc = serialise(record)
    assert set(doc) == {f.name for f in fields(ExecutionRecord)}
    assert doc["status"] == "Failed" and doc["parameters"] == {"Ratio": 0.5, "Tags": ["a"]}
    assert datetime.fromisoformat(doc["created_at"]) == moment.astimezone(UTC)
    attempt = StepAttempt(execution_id="abc", step_name="S", attempt=1, status=StepStatus.SUCCEEDED,
                          started_at=moment)
    nested = MetricsComparison(group="g", a=1, b=2, metrics=[MetricDifference("m", 1, 2, 1.0)])
    assert serialise({"a": [attempt], "n": nested})["n"]["metrics"][0] == {"name": "m", "a": 1, "b": 2,
                                                                         "difference": 1.0}
    assert json.loads(dumps([record, attempt])) == [doc, serialise(attempt)]


def test_endpoints(registered, cli):
    assert cli("endpoints", "create", "churn", "--model", "customer-churn@approved").returncode == 0
    store = registered.registry.store

    listed = as_json(cli, "endpoints", "list")
    described = as_json(cli, "endpoints", "describe", "churn")

    assert listed == serialise(store.list_endpoints()) and [e["name"] for e in listed] == ["churn"]
    assert described == serialise(store.get_endpoint("churn"))
    assert described["revision"] == 1 and described["status"] == listed[0]["status"]
