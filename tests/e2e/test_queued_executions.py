"""Queued executions: recorded Queued by `Pipeline.start(queued=True)` or `forgeline run --queue`, started by a
QueueLauncher (here in the test's process, as a server would run it) at most max_running at a time.

Steps wait for a release file per execution, so the test synchronises on statuses and files only.
"""

from __future__ import annotations

from forgeline.engine.execution import PipelineExecution
from forgeline.engine.launch import QueueLauncher
from forgeline.engine.runtime import Runtime

GATED = """
    import sys, time
    from pathlib import Path
    Path(sys.argv[1] + ".started").write_text("")
    while not Path(sys.argv[1]).exists():
        time.sleep(0.02)
"""

PIPELINE = """
    from forgeline.workflow import ParameterString, Pipeline, ProcessingStep

    gate = ParameterString("Gate", default_value="release")
    pipeline = Pipeline(name="queued", parameters=[gate], steps=[ProcessingStep(name="Wait", code="gated.py",
                                                                             arguments=[gate])])
"""


def test_a_queue_launcher_runs_queued_executions_at_most_max_running_at_once(project, wait_until):
    project.write("gated.py", GATED)
    project.write("pipeline.py", PIPELINE)
    pipeline = project.load()
    gates = [project.root / f"gate-{n}" for n in range(3)]
    queued = [pipeline.start(parameters={"Gate": str(gate)}, queued=True) for gate in gates]
    assert [e.record().status.value for e in queued] == ["Queued"] * 3
    assert not any(e.orchestrator().lost for e in queued)  # waiting for a launcher is not being lost

    launcher = QueueLauncher(Runtime.at_edge(), max_running=2)
    first = launcher.run_once()
    assert first == [queued[0].id, queued[1].id]  # oldest first, two at most
    assert launcher.run_once() == []  # no room: the third stays Queued
    assert queued[2].record().status.value == "Queued"
    for execution in queued[:2]:
        record = execution.record()
        assert record.status.value == "Executing" and record.owner is not None and record.started_at is not None
    wait_until(lambda: all(gate.with_name(gate.name + ".started").exists() for gate in gates[:2]), timeout=60,
               what="the two launched executions' steps to start")

    gates[0].write_text("")
    assert queued[0].wait(timeout=90).value == "Succeeded"
    assert wait_until(launcher.run_once, timeout=60, what="room for the third") == [queued[2].id]
    for gate in gates[1:]:
        gate.write_text("")
    assert [e.wait(timeout=90).value for e in queued] == ["Succeeded"] * 3
    assert [e.id for e in queued] == [e.id for e in map(PipelineExecution.get, (q.id for q in queued))]
    assert [e.events()[0].status for e in queued] == ["Executing"] * 3  # each orchestrator ran under its claim
    assert launcher.run_once() == []


def test_forgeline_run_queue_records_a_queued_execution_and_prints_its_id(project, cli):
    project.write("gated.py", GATED)
    project.write("pipeline.py", PIPELINE)
    gate = project.root / "release"
    gate.write_text("")

    queued = cli("run", "pipeline.py", "--queue", "-p", f"Gate={gate}", cwd=project.root)

    assert queued.returncode == 0, queued
    execution = PipelineExecution.get(queued.stdout.strip())
    assert execution.record().status.value == "Queued"
    listed = cli("executions", "list", cwd=project.root)
    assert execution.id in listed.stdout and "Queued" in listed.stdout and "lost" not in listed.stdout, listed
    assert QueueLauncher(Runtime.at_edge(), max_running=1).run_once() == [execution.id]
    assert execution.wait(timeout=90).value == "Succeeded"

    refused = cli("run", "pipeline.py", "--queue", "--no-cache", cwd=project.root)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused
    assert "a queued execution runs with its launcher's settings" in refused.stderr, refused
