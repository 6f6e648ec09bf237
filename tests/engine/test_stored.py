"""Stored pipelines: store_pipeline saves a version and its code snapshot; start_stored starts it by name."""

from __future__ import annotations

import pytest

from forgeline.engine.execution import PipelineExecution
from forgeline.engine.runtime import Runtime
from forgeline.engine.stored import StoredPipeline, start_stored, store_pipeline
from forgeline.errors import ArtifactNotFoundError, ForgelineError, ParameterError, PipelineNotFoundError
from forgeline.store.snapshots import read_snapshot

PIPELINE = """
    from forgeline.workflow import ParameterInteger, ParameterString, Pipeline, ProcessingStep

    count = ParameterInteger("Count", default_value=1)
    out = ParameterString("Out", default_value="out.txt")
    pipeline = Pipeline(name="stored", parameters=[count, out], steps=[
        ProcessingStep(name="Write", code="scripts/write.py", arguments=[out, count]),
    ])
"""
WRITE = """
    import sys
    from helper import words
    open(sys.argv[1], "w").write(words(int(sys.argv[2])))
"""


@pytest.fixture
def stored(project, forgeline_home):
    project.write("scripts/write.py", WRITE)
    project.write("scripts/helper.py", "def words(n):\n    return 'first ' * n\n")
    project.write("pipeline.py", PIPELINE)
    return project.load()


def test_store_pipeline_saves_a_version_and_the_code_it_runs(stored, project):
    runtime = Runtime.at_edge()
    saved = store_pipeline(runtime, stored, str(project.root))
    assert isinstance(saved, StoredPipeline) and (saved.name, saved.version) == ("stored", 1)
    version = runtime.store.get_pipeline_version("stored")
    assert version.code_snapshot == saved.code_snapshot
    # the script and the project module it imports, by their paths in the project folder
    assert sorted(read_snapshot(runtime.artifacts, saved.code_snapshot)) == ["scripts/helper.py", "scripts/write.py"]
    assert runtime.store.list_executions() == []  # nothing started
    assert store_pipeline(runtime, stored, str(project.root)) == saved  # unchanged: same version, same snapshot

    project.write("scripts/helper.py", "def words(n):\n    return 'second ' * n\n")
    changed = store_pipeline(runtime, stored, str(project.root))
    assert changed.version == 1 and changed.code_snapshot != saved.code_snapshot
    assert runtime.store.get_pipeline_version("stored", 1).code_snapshot == changed.code_snapshot


def test_start_stored_queues_an_execution_with_the_versions_snapshot_and_who_started_it(stored, project):
    runtime = Runtime.at_edge()
    saved = store_pipeline(runtime, stored, str(project.root))
    execution_id = start_stored(runtime, "stored", {"Count": "3"}, work_dir=str(project.root),
                                started_by={"kind": "schedule", "name": "weekly"})
    record = runtime.store.get_execution(execution_id)
    assert record.status.value == "Queued"
    assert record.parameters == {"Count": 3, "Out": "out.txt"}  # coerced as `forgeline run` coerces
    assert record.code_snapshot == saved.code_snapshot and record.pipeline_version == saved.version
    assert record.started_by == {"kind": "schedule", "name": "weekly"}
    assert record.work_dir == str(project.root)


def test_start_stored_refuses_bad_input_before_recording_anything(stored, project):
    runtime = Runtime.at_edge()
    store_pipeline(runtime, stored, str(project.root))
    with pytest.raises(ParameterError, match="Count"):
        start_stored(runtime, "stored", {"Count": "many"})
    with pytest.raises(ParameterError, match="Nope"):
        start_stored(runtime, "stored", {"Nope": "1"})
    with pytest.raises(PipelineNotFoundError, match="no version 7"):
        start_stored(runtime, "stored", {}, version=7)
    with pytest.raises(PipelineNotFoundError, match="no pipeline 'other'"):
        start_stored(runtime, "other", {})
    with pytest.raises(ArtifactNotFoundError, match="no code snapshot"):
        start_stored(runtime, "stored", {}, code_snapshot="0" * 64)
    runtime.store.save_pipeline_version("bare", stored.to_request() | {"Name": "bare"})
    with pytest.raises(ForgelineError, match="has no code snapshot"):
        start_stored(runtime, "bare", {})
    assert runtime.store.list_executions() == []
def test_start_stored_runs_the_stored_code_even_after_the_project_changed(stored, project):
    runtime = Runtime.at_edge()
    store_pipeline(runtime, stored, str(project.root))
    project.write("scripts/helper.py", "raise SystemExit('edited after it was stored')\n")
    out = project.root / "out.txt"
    execution_id = start_stored(runtime, "stored", {"Count": 2, "Out": str(out)}, work_dir=str(project.root),
                                queued=False,
                                started_by={"kind": "api", "actor": "tester"})
    execution = PipelineExecution.get(execution_id)
    assert execution.wait(timeout=90).value == "Succeeded", execution.record().failure_reason
    assert out.read_text() == "first first "


def test_upsert_stores_the_code_too_so_the_version_can_be_started_later(stored, project):
    runtime = Runtime.at_edge()
    upserted = stored.upsert()
    version = runtime.store.get_pipeline_version("stored")
    assert upserted["PipelineVersion"] == version.version and version.code_snapshot is not None
    assert "scripts/write.py" in read_snapshot(runtime.artifacts, version.code_snapshot)
    execution_id = start_stored(runtime, "stored", {}, work_dir=str(project.root))
    assert runtime.store.get_execution(execution_id).code_snapshot == version.code_snapshot


def test_the_sagemaker_spellings_describe_and_list_what_was_stored_and_run(stored, project):
    runtime = Runtime.at_edge()
    upserted = stored.upsert()
    described = stored.describe()
    assert described["PipelineName"] == "stored" and described["PipelineVersion"] == upserted["PipelineVersion"]
    assert '"Write"' in described["PipelineDefinition"]
    execution_id = start_stored(runtime, "stored", {"Count": 2}, work_dir=str(project.root), queued=False)
    execution = PipelineExecution(execution_id, runtime)
    execution.wait(timeout=120)
    assert execution.describe()["status"] == "Succeeded"
    [summary] = stored.list_executions()["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionArn"] == execution_id and summary["PipelineExecutionStatus"] == "Succeeded"
    assert {step.name for step in execution.list_steps()} == {"Write"}
