"""Code snapshots: an execution runs the code as it was when it was started, whatever happens to the files later.

`forgeline run` stores the code of every step (scripts with the project modules they import, source folders,
@step modules) in the artifact store; retry and resume run that snapshot, and `executions describe` shows it.
"""

from __future__ import annotations

import json
import shutil

import pytest

from e2e.test_recovery import kill_orchestrator
from forgeline.store.snapshots import read_snapshot

PIPELINE = """
    from forgeline.workflow import ParameterString, Pipeline, ProcessingStep, step

    out = ParameterString("Out")

    @step(name="Shout")
    def shout(out: str) -> str:
        from words import loud
        return loud(out)

    pipeline = Pipeline(name="snapshotted", parameters=[out], steps=[
        ProcessingStep(name="Write", code="write.py", source_dir="src", arguments=[out]),
        shout(out),
    ])
"""
# Both steps fail while a gate file exists next to the output (data), so the same code can fail, then succeed;
# Write hangs once when a hang file is there.
WRITE = """
    import os, sys, time
    from pathlib import Path
    from version import VERSION
    out = Path(sys.argv[1])
    if os.path.exists(out.with_name("hang")):
        os.unlink(out.with_name("hang"))
        out.with_name("started").write_text(str(os.getpid()))
        time.sleep(120)
    if os.path.exists(out.with_name("gate")):
        raise SystemExit("gate is closed")
    out.write_text(VERSION)
"""
WORDS = """
    import os
    def loud(out):
        if os.path.exists(os.path.join(os.path.dirname(out), "gate")):
            raise SystemExit("gate is closed")
        return {version!r} + "-SNAP"
"""


def snapshot_project(project, version: str = "old"):
    project.write("src/write.py", WRITE)
    project.write("src/version.py", f"VERSION = {version!r}\n")
    project.write("words.py", WORDS.format(version=version))
    project.write("pipeline.py", PIPELINE)
    return project


def edit_code(project) -> None:
    project.write("src/version.py", "VERSION = 'edited'\n")
    project.write("words.py", "def loud(out):\n    raise RuntimeError('edited after the run')\n")


def test_retry_runs_the_code_of_the_failed_execution_not_the_edited_files(project, cli):
    snapshot_project(project)
    out = project.root / "out.txt"
    (project.root / "gate").write_text("")
    first = cli("run", "pipeline.py", "--parameter", f"Out={out}", cwd=project.root)
    assert first.returncode != 0 and "gate is closed" in first.output, first
    execution_id = json.loads(cli("executions", "list", "--json", cwd=project.root).stdout)[0]["id"]

    edit_code(project)
    (project.root / "gate").unlink()
    retried = cli("executions", "retry", execution_id, cwd=project.root)

    assert retried.returncode == 0, retried
    assert out.read_text() == "old"  # the snapshot's version.py, not the edited one
    steps = {s["name"]: s for s in json.loads(cli("executions", "describe", execution_id, "--json",
                                                  cwd=project.root).stdout)["steps"]}
    assert steps["Shout"]["properties"]["Return"] == "old-SNAP"
    assert steps["Write"]["status"] == "Succeeded"

    fresh = cli("run", "pipeline.py", "--parameter", f"Out={out}", "--no-cache", cwd=project.root)
    assert fresh.returncode != 0 and "edited after the run" in fresh.output, fresh  # a new run takes new code
    assert out.read_text() == "edited"


@pytest.mark.parametrize("deleted", ["code", "working folder"])
def test_resume_runs_the_snapshot_after_the_code_was_deleted(project, cli, wait_until, deleted):
    snapshot_project(project)
    data = project.root.parent / "data"  # outside the working folder, which may go
    data.mkdir()
    out = data / "out.txt"
    (data / "hang").write_text("")
    execution = project.load().start(parameters={"Out": str(out)})
    wait_until((data / "started").exists, timeout=60, what="Write to start")
    kill_orchestrator(execution)

    if deleted == "code":
        shutil.rmtree(project.root / "src")
        (project.root / "words.py").unlink()
        (project.root / "pipeline.py").unlink()
    else:
        shutil.rmtree(project.root)
    resumed = cli("executions", "resume", execution.id, cwd=data)

    assert resumed.returncode == 0, resumed
    assert out.read_text() == "old"
    assert {s.name: s.status.value for s in execution.list_steps()} == {"Write": "Succeeded", "Shout": "Succeeded"}


def test_describe_shows_the_code_snapshot_an_execution_runs(project, cli):
    snapshot_project(project)
    out = project.root / "out.txt"
    run = cli("run", "pipeline.py", "--parameter", f"Out={out}", cwd=project.root)
    assert run.returncode == 0, run
    described = json.loads(cli("executions", "describe", "--json",
                               json.loads(cli("executions", "list", "--json", cwd=project.root).stdout)[0]["id"],
                               cwd=project.root).stdout)
    snapshot = described["code_snapshot"]
    files = read_snapshot(project.artifacts(), snapshot)
    # the source folder whole, and the module the @step function lives in with the project module it imports
    assert {"src/write.py", "src/version.py", "pipeline.py", "words.py"} <= set(files)
    assert described["code"] == {"snapshot": snapshot, "files": len(files),
                                 "bytes": sum(f.size for f in files.values())}
    text = cli("executions", "describe", described["id"], cwd=project.root)
    assert f"code: snapshot {snapshot[:12]} ({len(files)} files" in text.stdout, text
