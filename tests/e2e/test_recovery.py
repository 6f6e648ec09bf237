"""Crash safety, resume, stop and selective execution: an execution survives its orchestrator, ends on request,
and can run only some steps on top of another execution's outputs.

The orchestrator is killed for real (SIGKILL, its pid from the execution record) and its orphaned job is a
real process; every script counts its runs in a file of the project, so "not re-run" is checked twice: by the
step records and by the scripts themselves.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from conftest import job_process_group
from forgeline.engine.execution import PipelineExecution
from forgeline.engine.liveness import process_alive

COUNT = """
    import os, sys, time
    from pathlib import Path
    with open({log!r}, "a") as log:
        log.write({name!r} + "\\n")
"""

CRASH_PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep

    fast = ProcessingStep(name="Fast", code="fast.py", outputs=[ProcessingOutput(output_name="out", source="out")])
    side = ProcessingStep(name="Side", code="side.py", outputs=[ProcessingOutput(output_name="out", source="out")])
    slow = ProcessingStep(name="Slow", code="slow.py",
                          inputs=[ProcessingInput(source=fast.properties.outputs["out"], destination="in")],
                          outputs=[ProcessingOutput(output_name="out", source="out")])
    last = ProcessingStep(name="Last", code="last.py",
                          inputs=[ProcessingInput(source=slow.properties.outputs["out"], destination="in")],
                          outputs=[ProcessingOutput(output_name="out", source="out")])
    pipeline = Pipeline(name="crashing", steps=[fast, side, slow, last])
"""


def crash_project(project):
    log = str(project.root / "ran.log")
    marker, pid_file = str(project.root / "slow-started"), str(project.root / "slow.pid")

    def script(name: str, body: str) -> None:
        project.write(f"{name.lower()}.py", COUNT.format(log=log, name=name) + body)

    script("Fast", """
    Path("out/fast.txt").write_text("fast")
    """)
    script("Side", """
    Path("out/side.txt").write_text("side")
    """)
    script("Slow", f"""
    if not os.path.exists({marker!r}):  # the first run writes half its output, then hangs
        Path({marker!r}).write_text("")
        Path("out/part-1.txt").write_text("half")
        Path({pid_file!r}).write_text(str(os.getpid()))
        time.sleep(120)
    Path("out/slow.txt").write_text(Path("in/fast.txt").read_text() + " slow")
    """)
    script("Last", """
    Path("out/last.txt").write_text(Path("in/slow.txt").read_text() + " last")
    """)
    project.write("pipeline.py", CRASH_PIPELINE)
    project.pid_file = project.root / "slow.pid"
    return project


def runs(project) -> list[str]:
    log = project.root / "ran.log"
    names = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return sorted(names)


def steps_of(execution) -> dict:
    return {s.name: s for s in execution.list_steps()}


def kill_orchestrator(execution) -> int:
    pid = execution.record().orchestrator_pid
    assert pid and process_alive(pid)
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)  # reap it when it is our child (spawned); a forked one belongs to init
    except ChildProcessError:
        pass
    deadline = time.monotonic() + 5
    while process_alive(pid) and time.monotonic() < deadline:  # the kernel delivers SIGKILL asynchronously
        time.sleep(0.01)
    assert not process_alive(pid)
    return pid


def outputs_text(project, execution) -> dict[str, dict[str, str]]:
    """Every step's stored output folder: file name -> content."""
    store = project.artifacts()
    found = {}
    for name, run in steps_of(execution).items():
        for output, uri in run.outputs.items():
            found[f"{name}.{output}"] = {
                os.path.relpath(path, uri): store.read_bytes(path).decode() for path in store.list(uri)}
    return found


def test_resume_after_the_orchestrator_was_killed_reruns_only_what_was_running(project, cli, wait_until):
    crash_project(project)
    execution = project.load().start()
    wait_until(lambda: project.pid_file.exists() and steps_of(execution)["Side"].status.value == "Succeeded",
               timeout=30, what="Slow to hang and Side to finish")
    orphan = int(project.pid_file.read_text())
    # the orchestrator records the job's process group (its supervisor leads it) as soon as the job starts
    wait_until(lambda: job_process_group(execution, "Slow") == os.getpgid(orphan), timeout=10,
               what="Slow's process group recorded")
    before = steps_of(execution)
    assert before["Slow"].status.value == "Executing"
    assert before["Slow"].outputs == {}  # its half-written folder is nobody's output

    kill_orchestrator(execution)
    assert process_alive(orphan)  # the job outlived its orchestrator (its own session)
    assert execution.record().status.value == "Executing"  # as stored; `.status` would say it is lost
    assert runs(project) == ["Fast", "Side", "Slow"]

    resumed = cli("executions", "resume", execution.id, cwd=project.root)

    assert resumed.returncode == 0, resumed
    assert re.search(rf"execution {execution.id} Succeeded", resumed.stdout), resumed
    wait_until(lambda: not process_alive(orphan), timeout=5, what="the orphaned job to be ended")
    assert runs(project) == ["Last", "Slow"]  # Fast and Side had succeeded: not re-run
    after = steps_of(execution)
    assert all(s.status.value == "Succeeded" for s in after.values())
    assert after["Fast"].outputs == before["Fast"].outputs and after["Fast"].attempts == 1
    attempts = execution.list_attempts("Slow")
    assert [(a.attempt, a.status.value, a.failure_kind) for a in attempts] == [
        (1, "Failed", "Interrupted"), (2, "Succeeded", None)]
    assert "orchestrator died" in attempts[0].failure_reason
    assert execution.record().orchestrator_pid not in (None, 0)

    crashed = outputs_text(project, execution)
    assert crashed["Slow.out"] == {"slow.txt": "fast slow"}  # nothing of the killed attempt is visible
    uninterrupted = project.run()  # the marker exists now: Slow does not hang
    assert uninterrupted.status == "Succeeded"
    assert outputs_text(project, uninterrupted.execution) == crashed


def test_resume_refuses_an_execution_whose_orchestrator_is_alive_or_that_ended(project, cli, wait_until):
    crash_project(project)
    execution = project.load().start()
    wait_until(project.pid_file.exists, timeout=30, what="Slow to hang")

    alive = cli("executions", "resume", execution.id, cwd=project.root)
    assert alive.returncode == 1
    assert "is still run by its orchestrator" in alive.stderr, alive
    assert "FORGELINE_ORCHESTRATOR_TIMEOUT" in alive.stderr.replace("\n", ""), alive

    execution.stop()
    assert execution.wait(timeout=30).value == "Stopped"
    ended = cli("executions", "resume", execution.id, cwd=project.root)
    assert ended.returncode == 1
    assert "already ended (Stopped)" in ended.stderr and "executions retry" in ended.stderr, ended


STOP_PIPELINE = """
    from forgeline.workflow import ParallelismConfiguration, Pipeline, ProcessingOutput, ProcessingStep

    work = ProcessingStep(name="Work", code="work.py", outputs=[ProcessingOutput(output_name="out", source="out")])
    after = ProcessingStep(name="After", code="quick.py", depends_on=[work])
    waiting = ProcessingStep(name="Waiting", code="quick.py")  # independent, but no slot is free
    pipeline = Pipeline(name="stoppable", steps=[work, after, waiting],
                        parallelism_config=ParallelismConfiguration(max_parallel_steps=1))
"""


@pytest.mark.parametrize("ignores_sigterm", [False, True], ids=["polite-job", "sigterm-ignoring-job"])
def test_stop_ends_running_jobs_and_starts_no_new_step(project, cli, wait_until, ignores_sigterm):
    pid_file, note, after = project.root / "work.pid", project.root / "note.txt", project.root / "after.txt"
    project.write("work.py", f"""
        import os, signal, sys, time
        from pathlib import Path

        def on_term(*_):
            Path({str(note)!r}).write_text("got SIGTERM")
            if not {ignores_sigterm!r}:
                Path({str(after)!r}).write_text("exited on SIGTERM")
                sys.exit(0)

        signal.signal(signal.SIGTERM, on_term)
        Path({str(pid_file)!r}).write_text(str(os.getpid()))
        for _ in range(1200):
            time.sleep(0.1)
            if Path({str(note)!r}).exists():
                with open({str(after)!r}, "a") as alive:  # still running after the SIGTERM it ignored
                    alive.write("tick\\n")
    """)
    project.write("quick.py", f"open({str(project.root / 'quick-ran')!r}, 'w').write('ran')\n")
    project.write("pipeline.py", STOP_PIPELINE)
    started = cli("run", "pipeline.py", "--detach", cwd=project.root)
    assert started.returncode == 0, started
    execution = PipelineExecution.get(started.stdout.strip())
    wait_until(pid_file.exists, timeout=30, what="Work to start")
    job = int(pid_file.read_text())

    stopping = cli("executions", "stop", execution.id, cwd=project.root)

    assert stopping.returncode == 0, stopping
    assert re.search(rf"execution {execution.id}:\s+Stopping", stopping.stdout), stopping  # then Stopped
    assert execution.wait(timeout=60).value == "Stopped"
    assert note.read_text() == "got SIGTERM"  # asked politely first
    wait_until(lambda: not process_alive(job), timeout=30, what="the job to be gone")
    if ignores_sigterm:  # it lived on after the SIGTERM, so the grace period's SIGKILL is what ended it
        assert after.read_text().startswith("tick"), after.read_text()
    else:
        assert after.read_text() == "exited on SIGTERM"
    steps = steps_of(execution)
    assert steps["Work"].status.value == "Stopped"
    assert [a.status.value for a in execution.list_attempts("Work")] == ["Stopped"]
    for name in ("After", "Waiting"):
        assert (steps[name].status.value, steps[name].started_at) == ("Skipped", None), name
    assert not (project.root / "quick-ran").exists()
    assert execution.record().failure_reason is None or "stop" in execution.record().failure_reason.lower()


SELECTIVE_PIPELINE = """
    from forgeline.workflow import ParameterInteger, Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep

    seed = ParameterInteger("Seed", default_value=1)
    prepare = ProcessingStep(name="Prepare", code="prepare.py", arguments=[seed],
                             outputs=[ProcessingOutput(output_name="data", source="out")])
    train = ProcessingStep(name="Train", code="train.py", arguments=[seed],
                           inputs=[ProcessingInput(source=prepare.properties.outputs["data"], destination="in")],
                           outputs=[ProcessingOutput(output_name="model", source="out")])
    evaluate = ProcessingStep(name="Evaluate", code="evaluate.py",
                              inputs=[ProcessingInput(source=train.properties.outputs["model"], destination="in")],
                              outputs=[ProcessingOutput(output_name="report", source="out")])
    report = ProcessingStep(name="Report", code="report.py",
                            inputs=[ProcessingInput(source=evaluate.properties.outputs["report"], destination="in")])
    pipeline = Pipeline(name="selective", parameters=[seed], steps=[prepare, train, evaluate, report])
"""


def selective_project(project, prepare_fails: bool = False):
    log = str(project.root / "ran.log")

    def script(name: str, body: str) -> None:
        project.write(f"{name.lower()}.py", COUNT.format(log=log, name=name) + body)

    script("Prepare", ("""
    sys.exit("no data today")
    """ if prepare_fails else "") + """
    Path("out/data.txt").write_text("data seed " + sys.argv[1])
    """)
    script("Train", """
    Path("out/model.txt").write_text(Path("in/data.txt").read_text() + " | model seed " + sys.argv[1])
    """)
    script("Evaluate", """
    Path("out/report.txt").write_text(Path("in/model.txt").read_text() + " | evaluated")
    """)
    script("Report", """
    print(Path("in/report.txt").read_text())
    """)
    project.write("pipeline.py", SELECTIVE_PIPELINE)
    return project


def executed(cli_run) -> str:
    assert cli_run.returncode == 0, cli_run
    found = re.findall(r"execution ([0-9a-f]{12}) (\w+)", cli_run.stdout)
    assert found and found[-1][1] == "Succeeded", cli_run
    return found[-1][0]


def test_run_only_some_steps_taking_the_others_outputs_from_an_earlier_execution(project, cli):
    selective_project(project)
    source = PipelineExecution.get(executed(cli("run", "pipeline.py", "-p", "Seed=5", cwd=project.root)))
    runs(project)
    project.write("evaluate.py", COUNT.format(log=str(project.root / "ran.log"), name="Evaluate") + """
    Path("out/report.txt").write_text(Path("in/model.txt").read_text() + " | evaluated again")
    """)

    only = cli("run", "pipeline.py", "--only", "Train,Evaluate", "--from", source.id, cwd=project.root)

    execution = PipelineExecution.get(executed(only))
    assert runs(project) == ["Evaluate", "Train"]
    record, steps, before = execution.record(), steps_of(execution), steps_of(source)
    assert record.parent_execution_id == source.id
    assert record.parameters == {"Seed": 5}  # the source execution's parameters
    assert (steps["Prepare"].status.value, steps["Prepare"].outputs) == ("Succeeded", before["Prepare"].outputs)
    assert (steps["Prepare"].cache_hit, steps["Prepare"].cache_source) == (True, source.id)
    assert steps["Train"].attempts == steps["Evaluate"].attempts == 1
    assert steps["Train"].outputs != before["Train"].outputs  # run anew, stored anew
    assert steps["Report"].status.value == "Skipped" and steps["Report"].started_at is None
    assert "not selected" in steps["Report"].failure_reason
    assert project.read_output(steps["Evaluate"].outputs["report"], "report.txt") == (
        "data seed 5 | model seed 5 | evaluated again")


def test_selective_execution_needs_the_outputs_it_reuses(project, cli):
    selective_project(project, prepare_fails=True)
    failed = cli("run", "pipeline.py", cwd=project.root)
    assert failed.returncode == 1
    failed_id = re.findall(r"execution ([0-9a-f]{12}) Failed", failed.stdout)[-1]
    executions_before = len(project.store().list_executions())

    refused = cli("run", "pipeline.py", "--only", "Evaluate", "--from", failed_id, cwd=project.root)

    assert refused.returncode == 1
    message = refused.stderr.replace("\n", " ")
    assert "step 'Prepare', which is Failed in execution " + failed_id in message, refused
    assert "select it too" in message, refused
    assert len(project.store().list_executions()) == executions_before  # nothing was started

    unknown = cli("run", "pipeline.py", "--only", "Tran", "--from", failed_id, cwd=project.root)
    assert unknown.returncode == 1 and "'Tran'" in unknown.stderr and "Prepare" in unknown.stderr, unknown
    alone = cli("run", "pipeline.py", "--only", "Train", cwd=project.root)
    assert alone.returncode == 1 and "--from" in alone.stderr, alone


def test_pipeline_start_takes_a_selective_execution_config(project):
    from forgeline.workflow import SelectiveExecutionConfig

    selective_project(project)
    source = project.run(parameters={"Seed": 3})
    runs(project)
    pipeline = project.load()

    execution = pipeline.start(selective_execution_config=SelectiveExecutionConfig(source.execution.id, ["Train"]))

    assert execution.wait(timeout=60).value == "Succeeded"
    assert runs(project) == ["Train"]
    steps = steps_of(execution)
    assert steps["Prepare"].cache_source == source.execution.id
    assert [steps[n].status.value for n in ("Evaluate", "Report")] == ["Skipped", "Skipped"]
