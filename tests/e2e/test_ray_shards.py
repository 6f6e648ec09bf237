"""Shards on warm Ray job hosts after an orchestrator crash: resuming the execution finds both shards of a step of
instance_count=2 by the job's id and stops them before the step runs again, so no shard runs twice at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest import Cli
from e2e.test_ray_faults import DEADLINE_SECONDS, alive, describe, kill_orchestrator, start_run, wait_for

pytestmark = pytest.mark.ray
pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")

WORK = """
import os, pathlib, sys, time
markers, shard = pathlib.Path(sys.argv[1]), os.environ["FORGELINE_SHARD_INDEX"]
first = markers / f"shard{shard}-1"
if not first.exists():
    first.write_text(str(os.getpid()))
    print(f"shard {shard} holds", flush=True)
    time.sleep(600)
try:
    os.kill(int(first.read_text()), 0)
    print(f"shard {shard} overlaps its first run", flush=True)
    sys.exit(5)
except ProcessLookupError:
    pass
(markers / f"shard{shard}-2").write_text(str(os.getpid()))
print(f"shard {shard} ran again", flush=True)
"""
PIPELINE = """
from forgeline.workflow import Pipeline, ProcessingStep
pipeline = Pipeline(name="shards", steps=[ProcessingStep(name="Work", code="work.py", arguments=[{markers!r}],
                                                         instance_count=2)])
"""


def test_resume_stops_both_shards_left_on_warm_hosts_before_running_the_step_again(
        ray_env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    markers = tmp_path / "markers"
    markers.mkdir()
    (project / "work.py").write_text(WORK)
    (project / "pipeline.py").write_text(textwrap.dedent(PIPELINE.format(markers=str(markers))))
    cli = Cli({**ray_env, "FORGELINE_ORCHESTRATOR_TIMEOUT": "15"})
    run = start_run(cli.env, project)
    try:
        pids = [int(wait_for(markers / f"shard{n}-1", f"shard {n} to start")) for n in (0, 1)]
        execution_id = kill_orchestrator(cli, project, run)
    finally:
        if run.poll() is None:
            run.kill()
    assert all(alive(pid) for pid in pids)  # the hosts kept both shards running
    resumed = cli("executions", "resume", execution_id, cwd=project, timeout=DEADLINE_SECONDS)
    assert resumed.returncode == 0, resumed
    execution = describe(cli, execution_id, project)
    assert execution["status"] == "Succeeded", execution
    attempts = [a for a in execution["attempts"] if a["step_name"] == "Work"]
    assert [(a["status"], a["failure_kind"]) for a in attempts] == [("Failed", "Interrupted"), ("Succeeded", None)]
    assert not any(alive(pid) for pid in pids)
    assert (markers / "shard0-2").exists() and (markers / "shard1-2").exists()
    logs = cli("logs", execution_id, "Work", cwd=project).stdout
    assert "overlaps" not in logs and "shard 0 ran again" in logs and "shard 1 ran again" in logs, logs
