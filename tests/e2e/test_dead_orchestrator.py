"""A dead orchestrator is visible, can be resumed by hand or automatically, and what finished meanwhile is kept.

The orchestrator is killed for real (SIGKILL, its pid from the execution record). Steps are scripts that tell
the test what they do through files (started, finished, how often they ran) and wait for a release file, so
every step of a test waits on a file or a status, never on a clock.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import job_process_group
from forgeline.engine.execution import PipelineExecution
from forgeline.engine.liveness import process_alive
from forgeline.errors import OrchestratorLostError

# A step script: counts its runs, says it started, waits in its first attempt (the job folder's name) for a
# release file, prints after the release (when its orchestrator is dead, so a broken pipe would show), writes
# its output and exits with `code`.
STEP = """
    import os, sys, time
    from pathlib import Path
    root = Path({root!r})
    with open(root / "ran.log", "a") as log:
        log.write({name!r} + "\\n")
    (root / "{name}.started").write_text(str(os.getpid()))
    while Path.cwd().name == "1" and {release!r} and not (root / {release!r}).exists():
        time.sleep(0.02)
    for line in range(200):
        print("after the release, line", line, flush=True)
    Path("out/result.txt").write_text({name!r} + " done")
    (root / "{name}.finished").write_text("")
    sys.exit({code})
"""

PIPELINE = """
    from forgeline.workflow import (
        ParallelismConfiguration, Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep,
    )

    def step(name, **kwargs):
        return ProcessingStep(name=name, code=name.lower() + ".py",
                              outputs=[ProcessingOutput(output_name="out", source="out")], **kwargs)

    finisher = step("Finisher")
    crasher = step("Crasher")
    runner = step("Runner")
    after = step("After", inputs=[ProcessingInput(source=finisher.properties.outputs["out"], destination="in")])
    pipeline = Pipeline(name="orphans", steps=[finisher, crasher, runner, after],
                        parallelism_config=ParallelismConfiguration(max_parallel_steps=3))
"""


def orphans_project(project, release: str = "release", crasher_waits: bool = True, crasher_code: int = 3):
    """Finisher (exit 0) and Crasher (exit 3) wait for ``release``; Runner waits for ``release-runner``."""
    root = str(project.root)
    project.write("finisher.py", STEP.format(root=root, name="Finisher", code=0, release=release))
    project.write("crasher.py", STEP.format(root=root, name="Crasher", code=crasher_code,
                                            release=release if crasher_waits else ""))
    project.write("runner.py", STEP.format(root=root, name="Runner", code=0, release=f"{release}-runner"))
    project.write("after.py", STEP.format(root=root, name="After", code=0, release=""))
    project.write("pipeline.py", PIPELINE)
    return project


def ran(project) -> list[str]:
    log = project.root / "ran.log"
    return sorted(log.read_text().split()) if log.exists() else []


def kill_orchestrator(execution, wait_until) -> int:
    pid = wait_until(lambda: execution.record().orchestrator_pid, timeout=30, what="the orchestrator's pid")
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)  # reap it when it is our child; a forked one belongs to init
    except ChildProcessError:
        pass
    wait_until(lambda: not process_alive(pid), timeout=10, what="the orchestrator to be gone")
    return pid


def started(project, *names):
    return lambda: all((project.root / f"{name}.started").exists() for name in names)


def test_a_killed_orchestrator_is_shown_lost_everywhere_a_user_looks(project, cli, wait_until):
    orphans_project(project)
    execution = project.load().start()
    wait_until(started(project, "Finisher", "Crasher", "Runner"), timeout=60, what="the three steps to start")
    kill_orchestrator(execution, wait_until)

    listed = cli("executions", "list", cwd=project.root)
    assert listed.returncode == 0, listed
    assert re.search(rf"{execution.id}.*Executing \(orchestrator lost \d+ s ago\)", listed.stdout), listed

    described = cli("executions", "describe", execution.id, cwd=project.root)
    assert described.returncode == 0, described
    assert re.search(r"status: Executing \(orchestrator lost \d+ s ago\)", described.stdout), described
    assert re.search(rf"orchestrator lost \d+ s ago — `forgeline executions resume {execution.id}`",
                     described.stdout), described

    as_json = cli("executions", "describe", execution.id, "--json", cwd=project.root)
    assert re.fullmatch(r"orchestrator lost \d+ s ago", json.loads(as_json.stdout)["orchestrator_lost"]), as_json
    listed_json = json.loads(cli("executions", "list", "--json", cwd=project.root).stdout)
    assert listed_json[0]["id"] == execution.id and listed_json[0]["orchestrator_lost"], listed_json

    followed = cli("logs", execution.id, "Runner", "--follow", cwd=project.root)
    assert followed.returncode == 1, followed  # it stops following instead of waiting forever
    assert "orchestrator was lost" in followed.stderr.replace("\n", " ") and "Traceback" not in followed.stderr

    handle = PipelineExecution.get(execution.id)
    assert handle.orchestrator().lost
    assert handle.describe()["orchestrator_lost"].startswith("orchestrator lost")
    with pytest.raises(OrchestratorLostError, match=rf"executions resume {execution.id}"):
        handle.wait(timeout=60)  # returns at once with a clear error instead of blocking forever
    with pytest.raises(OrchestratorLostError, match="orchestrator was lost"):
        handle.status  # noqa: B018 - reading it is the point: never Executing forever
    assert handle.record().status.value == "Executing"  # the stored value stays readable

    # nothing above resumed it; now the user does
    (project.root / "release").write_text("")
    (project.root / "release-runner").write_text("")
    resumed = cli("executions", "resume", execution.id, cwd=project.root)
    assert re.search(rf"execution {execution.id} Failed", resumed.stdout), resumed  # Crasher exited 3
    after = cli("executions", "list", cwd=project.root)
    assert "orchestrator lost" not in after.stdout, after


def test_a_job_that_finished_while_its_orchestrator_was_dead_is_adopted_not_rerun(project, cli, wait_until):
    orphans_project(project)
    execution = project.load().start()
    wait_until(started(project, "Finisher", "Crasher", "Runner"), timeout=60, what="the three steps to start")
    attempts = {a.step_name: a for a in execution.list_attempts()}
    runner_group = wait_until(lambda: job_process_group(execution, "Runner"), timeout=10, what="Runner's pid")
    kill_orchestrator(execution, wait_until)

    (project.root / "release").write_text("")  # Finisher and Crasher end with nobody watching
    jobs = {name: project.root.parent / "forgeline-home" / "jobs" / execution.id / name / "1"
            for name in ("Finisher", "Crasher")}
    for name, job_dir in jobs.items():
        wait_until((job_dir / ".forgeline-exit-status").exists, timeout=60, what=f"{name}'s exit status")
    assert (jobs["Crasher"] / ".forgeline-exit-status").read_text() == "3\n"
    assert process_alive(runner_group)  # Runner still waits for its own release
    assert ran(project) == ["Crasher", "Finisher", "Runner"]

    resumed = cli("executions", "resume", execution.id, cwd=project.root)  # Runner's rerun does not wait

    assert resumed.returncode == 1, resumed  # Crasher's exit 3 is kept: the execution fails
    assert re.search(rf"execution {execution.id} Failed", resumed.stdout), resumed
    steps = {s.name: s for s in execution.list_steps()}
    # adopted: one attempt each, the result of the run that ended while the orchestrator was dead
    assert (steps["Finisher"].status.value, steps["Finisher"].attempts) == ("Succeeded", 1)
    assert project.read_output(steps["Finisher"].outputs["out"], "result.txt") == "Finisher done"
    assert (steps["Crasher"].status.value, steps["Crasher"].attempts) == ("Failed", 1)
    assert "exited with code 3" in steps["Crasher"].failure_reason
    # Runner was still running: it was ended and ran again in a fresh attempt
    assert steps["Runner"].status.value == "Succeeded"
    assert [(a.attempt, a.status.value, a.failure_kind) for a in execution.list_attempts("Runner")] == [
        (1, "Failed", "Interrupted"), (2, "Succeeded", None)]
    assert "orchestrator died" in execution.list_attempts("Runner")[0].failure_reason
    assert steps["After"].status.value == "Succeeded"  # downstream of the adopted Finisher
    assert ran(project) == ["After", "Crasher", "Finisher", "Runner", "Runner"]  # nothing adopted ran twice
    assert attempts["Finisher"].log_path is not None
    log = open(attempts["Finisher"].log_path).read()
    assert "after the release, line 199" in log  # printed while nobody read its pipes: kept in the log
    assert "its result was adopted" in log


def test_auto_resume_lets_a_later_command_resume_a_lost_execution(project, cli, wait_until):
    orphans_project(project, crasher_code=0)
    execution = project.load().start()
    wait_until(started(project, "Finisher", "Crasher", "Runner"), timeout=60, what="the steps to start")
    kill_orchestrator(execution, wait_until)
    for release in ("release", "release-runner"):
        (project.root / release).write_text("")

    listed = cli("--auto-resume", "executions", "list", cwd=project.root)

    assert listed.returncode == 0, listed
    assert re.search(rf"{execution.id}.*Executing \(orchestrator lost, resumed now\)", listed.stdout), listed
    assert execution.wait(timeout=90).value == "Succeeded"
    again = cli("executions", "resume", execution.id, cwd=project.root)
    assert again.returncode == 1 and "already ended (Succeeded)" in again.stderr, again

    # FORGELINE_AUTO_RESUME=1 does the same for every command; describe resumes a second lost execution
    orphans_project(project, release="release-2", crasher_code=0)
    second = project.load().start()
    wait_until(lambda: all(job_process_group(second, s) for s in ("Finisher", "Crasher", "Runner")), timeout=60,
               what="the second execution's three jobs to start")
    kill_orchestrator(second, wait_until)
    for release in ("release-2", "release-2-runner"):
        (project.root / release).write_text("")
    described = cli("executions", "describe", second.id, cwd=project.root, env={"FORGELINE_AUTO_RESUME": "1"})
    assert "status: Executing (orchestrator lost, resumed now)" in described.stdout, described
    assert second.wait(timeout=90).value == "Succeeded"

    # and for Python readers: wait() resumes instead of raising
    orphans_project(project, release="release-3", crasher_code=0)
    third = project.load().start()
    wait_until(lambda: all(job_process_group(third, s) for s in ("Finisher", "Crasher", "Runner")), timeout=60,
               what="the third execution's three jobs to start")
    kill_orchestrator(third, wait_until)
    for release in ("release-3", "release-3-runner"):
        (project.root / release).write_text("")
    handle = PipelineExecution.get(third.id, settings=_settings(auto_resume="1"))
    assert handle.wait(timeout=90).value == "Succeeded"


def _settings(**env):
    from forgeline.config import Settings

    return Settings.from_env({**os.environ, **{f"FORGELINE_{k.upper()}": v for k, v in env.items()}})


def test_the_run_watcher_stops_waiting_for_a_dead_orchestrator(project, cli, wait_until):
    orphans_project(project)
    watcher = subprocess.Popen([sys.executable, "-m", "forgeline.cli.main", "run", "pipeline.py"],
                               cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    try:
        wait_until(started(project, "Finisher"), timeout=60, what="the first step to start")
        [record] = project.store().list_executions()
        kill_orchestrator(PipelineExecution.get(record.id), wait_until)
        out, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 1, (out, err)
    assert f"execution {record.id} is Executing but its orchestrator was lost" in err.replace("\n", " "), err
    assert f"forgeline executions resume {record.id}" in err.replace("\n", " "), err
    assert "Traceback" not in err
    (project.root / "release").write_text("")
    (project.root / "release-runner").write_text("")
    resumed = cli("executions", "resume", record.id, cwd=project.root)
    assert re.search(rf"execution {record.id} Failed", resumed.stdout), resumed  # Crasher exits 3


def test_stop_ends_a_lost_execution_stopped_at_once_and_ends_its_orphaned_jobs(project, cli, wait_until):
    orphans_project(project)
    execution = project.load().start()
    wait_until(started(project, "Finisher", "Crasher", "Runner"), timeout=60, what="the three steps to start")
    runner = int((project.root / "Runner.started").read_text())
    kill_orchestrator(execution, wait_until)

    stopped = cli("executions", "stop", execution.id, cwd=project.root)

    assert stopped.returncode == 0 and re.search(rf"execution {execution.id}: +Stopped", stopped.stdout), stopped
    record = execution.record()
    assert record.status.value == "Stopped" and "orchestrator was lost" in (record.failure_reason or ""), record
    wait_until(lambda: not process_alive(runner), timeout=30, what="the orphaned Runner job to be ended")
    assert {run.name: run.status.value for run in execution.list_steps()} == {
        "Finisher": "Stopped", "Crasher": "Stopped", "Runner": "Stopped", "After": "Skipped"}
    assert {(a.step_name, a.failure_kind) for a in execution.list_attempts()} == {
        ("Finisher", "Interrupted"), ("Crasher", "Interrupted"), ("Runner", "Interrupted")}


def test_a_silent_orchestrator_is_lost_after_the_timeout_and_alive_again_when_it_beats(project, cli, wait_until):
    orphans_project(project)
    env = {"FORGELINE_ORCHESTRATOR_TIMEOUT": "1.5"}  # heartbeats every 0.25 s
    started_run = cli("run", "pipeline.py", "--detach", cwd=project.root, env=env)
    execution = PipelineExecution.get(started_run.stdout.strip())
    wait_until(started(project, "Finisher"), timeout=60, what="the first step to start")
    pid = execution.record().orchestrator_pid
    os.kill(pid, signal.SIGSTOP)  # alive but silent: only its heartbeat can tell
    try:
        lost = wait_until(lambda: re.search(r"orchestrator lost (\d+) s ago",
                                            cli("executions", "list", cwd=project.root, env=env).stdout),
                          timeout=60, what="the silent orchestrator to be reported lost")
        assert process_alive(pid) and int(lost.group(1)) >= 1  # alive, yet lost: its heartbeat stopped
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: "orchestrator lost" not in cli("executions", "list", cwd=project.root, env=env).stdout,
               timeout=30, what="the orchestrator's next heartbeat")
    (project.root / "release").write_text("")
    (project.root / "release-runner").write_text("")
    assert execution.wait(timeout=90).value == "Failed"  # Crasher exits 3; the orchestrator finished it


def test_resume_keeps_a_step_that_had_failed_before_the_crash(project, cli, wait_until):
    orphans_project(project, crasher_waits=False)  # Crasher fails at once
    execution = project.load().start()
    wait_until(lambda: {s.name: s.status.value for s in execution.list_steps()}["Crasher"] == "Failed",
               timeout=60, what="Crasher to fail")
    wait_until(started(project, "Finisher", "Runner"), timeout=60, what="the other steps to start")
    kill_orchestrator(execution, wait_until)
    (project.root / "release").write_text("")
    (project.root / "release-runner").write_text("")

    resumed = cli("executions", "resume", execution.id, cwd=project.root)

    assert resumed.returncode == 1, resumed
    steps = {s.name: s for s in execution.list_steps()}
    assert (steps["Crasher"].status.value, steps["Crasher"].attempts) == ("Failed", 1)  # kept, not rerun
    assert ran(project).count("Crasher") == 1
    assert steps["Finisher"].status.value == steps["After"].status.value == "Succeeded"
    assert "step 'Crasher' failed" in execution.record().failure_reason

    retried = cli("executions", "retry", execution.id, cwd=project.root)  # retry is what reruns a failure
    assert retried.returncode == 1 and ran(project).count("Crasher") == 2, retried


def test_an_orphaned_job_is_found_through_its_job_reference_and_ended_on_resume(project, cli, wait_until):
    """The store records no process of a job: the executor finds a dead orchestrator's job from its reference."""
    orphans_project(project)
    execution = project.load().start()
    wait_until(started(project, "Finisher", "Crasher", "Runner"), timeout=60, what="the three steps to start")
    runner = int((project.root / "Runner.started").read_text())
    kill_orchestrator(execution, wait_until)
    (project.root / "release").write_text("")

    resumed = cli("executions", "resume", execution.id, cwd=project.root)

    assert re.search(rf"execution {execution.id} Failed", resumed.stdout), resumed  # Crasher exits 3
    wait_until(lambda: not process_alive(runner), timeout=30, what="the unrecorded Runner job to be ended")
    assert [(a.attempt, a.status.value) for a in execution.list_attempts("Runner")] == [
        (1, "Failed"), (2, "Succeeded")]
    assert ran(project).count("Runner") == 2


def test_an_orchestrator_thought_lost_stands_down_when_it_comes_back_after_a_resume(project, cli, wait_until):
    orphans_project(project, crasher_code=0)
    env = {"FORGELINE_ORCHESTRATOR_TIMEOUT": "1.5"}
    execution = PipelineExecution.get(cli("run", "pipeline.py", "--detach", cwd=project.root, env=env).stdout.strip())
    wait_until(started(project, "Finisher", "Crasher", "Runner"), timeout=60, what="the three steps to start")
    old = execution.record().orchestrator_pid
    os.kill(old, signal.SIGSTOP)
    try:
        wait_until(lambda: "orchestrator lost" in cli("executions", "list", cwd=project.root, env=env).stdout,
                   timeout=60, what="the silent orchestrator to be reported lost")
        resumed = cli("executions", "resume", execution.id, "--detach", cwd=project.root, env=env)
        assert resumed.returncode == 0, resumed
        new = wait_until(lambda: execution.record().orchestrator_pid, timeout=60, what="the new orchestrator")
        assert new != old
    finally:
        os.kill(old, signal.SIGCONT)
    wait_until(lambda: not process_alive(old), timeout=30, what="the old orchestrator to stand down")
    for release in ("release", "release-runner"):
        (project.root / release).write_text("")
    assert execution.wait(timeout=90).value == "Succeeded"
    assert execution.record().orchestrator_pid == new
    for name in ("Finisher", "Crasher", "Runner"):  # the old one's jobs were ended by the new one and ran again
        assert [a.status.value for a in execution.list_attempts(name)] == ["Failed", "Succeeded"], name
    orchestrator_log = (project.root.parent / "forgeline-home" / "logs" / execution.id / "orchestrator.log")
    assert "this one stands down" in orchestrator_log.read_text()
