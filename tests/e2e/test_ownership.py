"""One orchestrator per execution: a second one for the same execution exits, a paused one that was taken over
stops itself without writing, and two resumes at once register one model version.

Orchestrators are real processes; they are paused with SIGSTOP and continued with SIGCONT. The step waits for a
release file, so every test waits on files and statuses, never on a clock.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

from forgeline.engine.execution import PipelineExecution
from forgeline.engine.liveness import TAKEN_OVER_EXIT_CODE, process_alive

from .test_dead_orchestrator import kill_orchestrator

# Gate says which attempt started (its job folder's name), waits for the release file, then writes its output.
GATE = """
    import sys, time
    from pathlib import Path
    root = Path({root!r})
    attempt = Path.cwd().name
    with open(root / "ran.log", "a") as log:
        log.write("Gate " + attempt + "\\n")
    (root / f"Gate.started.{{attempt}}").write_text("")
    while not (root / "release").exists():
        time.sleep(0.02)
    Path("out/model.txt").write_text("model of attempt " + attempt)
"""

PIPELINE = """
    from forgeline.workflow import Model, Pipeline, ProcessingOutput, ProcessingStep, RegisterModel

    gate = ProcessingStep(name="Gate", code="gate.py", outputs=[ProcessingOutput(output_name="out", source="out")])
    register = RegisterModel(name="Register", model=Model(model_data=gate.properties.outputs["out"]),
                             model_package_group_name="owned", approval_status="Approved",
                             content_types=["text/csv"], response_types=["text/csv"])
    pipeline = Pipeline(name="ownership", steps=[gate, register])
"""


def gate_project(project):
    project.write("gate.py", GATE.format(root=str(project.root)))
    project.write("pipeline.py", PIPELINE)
    return project


def gate_started(project, attempt: int):
    return (project.root / f"Gate.started.{attempt}").exists


def ran(project) -> list[str]:
    return (project.root / "ran.log").read_text().splitlines()


def orchestrator_process(cli, project, execution_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "forgeline.engine.orchestrator", execution_id],
                            cwd=project.root, env=cli.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_a_second_orchestrator_for_the_same_execution_exits_saying_another_owns_it(project, cli, wait_until):
    gate_project(project)
    execution = project.load().start()
    wait_until(gate_started(project, 1), timeout=60, what="the gate's first attempt")
    kill_orchestrator(execution, wait_until)
    store = project.store()
    record = store.get_execution(execution.id)
    assert store.claim_lost_execution(execution.id, record.heartbeat_at)  # what a resume does before launching
    store.close()

    first, second = (orchestrator_process(cli, project, execution.id) for _ in range(2))
    loser = wait_until(lambda: next((p for p in (first, second) if p.poll() is not None), None), timeout=60,
                       what="one of the two orchestrators to exit")
    winner = second if loser is first else first
    output = loser.stdout.read() if loser.stdout else ""
    assert loser.returncode == TAKEN_OVER_EXIT_CODE, output
    assert re.search(rf"execution {execution.id} is Executing and run by another orchestrator \(\S+:{winner.pid}\)",
                     output), output
    wait_until(gate_started(project, 2), timeout=60, what="the winner to rerun the interrupted gate")

    (project.root / "release").write_text("")
    assert winner.wait(timeout=120) == 0, winner.stdout.read() if winner.stdout else ""
    assert execution.record().status.value == "Succeeded"
    assert ran(project) == ["Gate 1", "Gate 2"]  # the interrupted attempt, then one rerun: not two
    assert [p.version for p in project.store().list_model_packages("owned")] == [1]


def test_two_resumes_at_once_run_one_orchestrator_and_register_one_version(project, cli, wait_until):
    gate_project(project)
    execution = project.load().start()
    wait_until(gate_started(project, 1), timeout=60, what="the gate's first attempt")
    kill_orchestrator(execution, wait_until)

    resumes = [subprocess.Popen([sys.executable, "-m", "forgeline.cli.main", "executions", "resume", execution.id,
                                 "--detach"], cwd=project.root, env=cli.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(process.wait(timeout=120), *process.communicate()) for process in resumes]
    assert any(code == 0 for code, _, _ in outcomes), outcomes
    wait_until(gate_started(project, 2), timeout=60, what="the gate to run again")

    (project.root / "release").write_text("")
    assert execution.wait(timeout=120).value == "Succeeded"
    assert ran(project) == ["Gate 1", "Gate 2"]
    assert [p.version for p in project.store().list_model_packages("owned")] == [1]
    log = (project.root.parent / "forgeline-home" / "logs" / execution.id / "orchestrator.log").read_text()
    assert "Traceback" not in log, log


def test_a_paused_orchestrator_taken_over_stops_itself_without_writing(project, cli, wait_until, monkeypatch):
    monkeypatch.setenv("FORGELINE_ORCHESTRATOR_TIMEOUT", "2")  # a paused orchestrator is lost after 2 s
    gate_project(project)
    started = cli("run", "pipeline.py", "--detach", cwd=project.root, env={"FORGELINE_ORCHESTRATOR_TIMEOUT": "2"})
    assert started.returncode == 0, started
    [record] = project.store().list_executions()
    execution = PipelineExecution.get(record.id)
    wait_until(gate_started(project, 1), timeout=60, what="the gate's first attempt")
    paused = wait_until(lambda: execution.record().orchestrator_pid, timeout=30, what="the orchestrator's pid")
    os.kill(paused, signal.SIGSTOP)
    try:
        wait_until(lambda: execution.orchestrator().lost, timeout=60, what="the paused orchestrator to be lost")
        resumed = cli("executions", "resume", execution.id, "--detach", cwd=project.root,
                      env={"FORGELINE_ORCHESTRATOR_TIMEOUT": "2"})
        assert resumed.returncode == 0, resumed
        wait_until(gate_started(project, 2), timeout=60, what="the new orchestrator to rerun the gate")
        taken_over = execution.record()
        assert taken_over.orchestrator_pid not in (None, paused)
        interrupted = execution.list_attempts("Gate")[0]
        assert (interrupted.status.value, interrupted.failure_kind) == ("Failed", "Interrupted")
    finally:
        os.kill(paused, signal.SIGCONT)

    wait_until(lambda: not process_alive(paused), timeout=60, what="the paused orchestrator to stand down")
    log = project.root.parent / "forgeline-home" / "logs" / execution.id / "orchestrator.log"
    assert f"another orchestrator took execution {execution.id} over; this one stands down" in log.read_text()
    # it wrote nothing: the attempt the new orchestrator marked Interrupted stays so, the new one is untouched
    assert execution.list_attempts("Gate")[0] == interrupted
    assert execution.record().orchestrator_pid == taken_over.orchestrator_pid
    assert execution.record().epoch == taken_over.epoch

    (project.root / "release").write_text("")
    assert execution.wait(timeout=120).value == "Succeeded"
    assert [(a.attempt, a.status.value) for a in execution.list_attempts("Gate")] == [(1, "Failed"), (2, "Succeeded")]
    assert [p.version for p in project.store().list_model_packages("owned")] == [1]
