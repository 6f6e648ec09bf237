"""`forgeline executions describe` says who or what started an execution, in text and in --json, for every kind."""

from __future__ import annotations

import getpass
import json

import pytest

from forgeline.cli.description import started_by_text
from forgeline.store.metadata.records import ExecutionStatus

PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingStep

    hello = ProcessingStep(name="Hello", code="hello.py")
    pipeline = Pipeline(name="starters", steps=[hello])
"""


@pytest.fixture
def starters(project, cli):
    project.write("hello.py", "print('hello')\n")
    project.write("pipeline.py", PIPELINE)
    return project


def describe(cli, project, execution_id):
    text = cli("executions", "describe", execution_id, cwd=project.root)
    as_json = cli("executions", "describe", execution_id, "--json", cwd=project.root)
    assert text.returncode == 0 and as_json.returncode == 0, (text, as_json)
    return text.stdout, json.loads(as_json.stdout)


def started_by_line(text):
    return next(line for line in text.splitlines() if line.startswith("started by: "))


def test_forgeline_run_records_the_cli_and_the_os_user(starters, cli):
    run = cli("run", "pipeline.py", cwd=starters.root)
    assert run.returncode == 0, run
    execution_id = starters.store().list_executions()[0].id

    text, document = describe(cli, starters, execution_id)

    assert document["started_by"] == {"kind": "cli", "actor": getpass.getuser()}
    assert started_by_line(text) == f"started by: cli (user {getpass.getuser()})"


def test_pipeline_start_records_python_and_the_os_user(starters, cli):
    finished = starters.run()
    assert finished.status == "Succeeded", finished

    text, document = describe(cli, starters, finished.execution.id)

    assert finished.execution.record().started_by == {"kind": "python", "actor": getpass.getuser()}
    assert document["started_by"] == {"kind": "python", "actor": getpass.getuser()}
    assert started_by_line(text) == f"started by: python (user {getpass.getuser()})"


@pytest.mark.parametrize(("started_by", "line"), [
    ({"kind": "schedule", "name": "nightly", "due_at": "2026-01-02T03:00:00+00:00"},
     "started by: schedule (nightly, due 2026-01-02T03:00:00+00:00)"),
    ({"kind": "trigger", "name": "arrivals", "uri": "file:///data/in/a.csv", "object_id": 7},
     "started by: trigger (arrivals, file:///data/in/a.csv)"),
    ({"kind": "api", "name": "ci-token"}, "started by: api (ci-token)"),
    (None, "started by: unknown (recorded before executions kept who started them)"),
])
def test_describe_shows_every_kind_of_starter(starters, cli, started_by, line):
    run = cli("run", "pipeline.py", cwd=starters.root)  # stores the pipeline version the queued one runs
    assert run.returncode == 0, run
    store = starters.store()
    store.create_execution(execution_id="abcdef012345", pipeline_name="starters", pipeline_version=1, parameters={},
                           work_dir=str(starters.root), steps=[("Hello", "Processing")],
                           status=ExecutionStatus.QUEUED, started_by=started_by)

    text, document = describe(cli, starters, "abcdef012345")

    assert document["started_by"] == started_by
    assert started_by_line(text) == line


def test_the_text_of_a_starter_without_details_is_its_kind():
    assert started_by_text({"kind": "cli"}) == "cli"
    assert started_by_text({"kind": "python", "actor": None}) == "python"
