"""Retries: per-step retry policies by failure kind, and retrying a finished execution.

Scripts fail on purpose a set number of times, counting their runs in a file of the project, so every
attempt of a step is real and its failure kind is what forgeline saw (exit code, signal, timeout, staging).
"""

from __future__ import annotations

import re

from forgeline.engine.execution import PipelineExecution
from forgeline.engine.recovery import pipeline_of

FAIL_TIMES = """
    import os, signal, sys
    from pathlib import Path
    counter = Path({counter!r})
    run = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(run))
    if run <= {failures}:
        print("run", run, "fails", file=sys.stderr)
        if {how!r} == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        sys.exit(1)
    Path("out/result.txt").write_text("ok after " + str(run))
"""

RETRY_PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingOutput, ProcessingStep, RetryPolicy

    flaky = ProcessingStep(name="Flaky", code="flaky.py",
                           outputs=[ProcessingOutput(output_name="out", source="out")],
                           retry_policies=[{policies}])
    pipeline = Pipeline(name="retrying", steps=[flaky])
"""


def flaky_project(project, failures: int, policies: str, how: str = "exit"):
    project.write("flaky.py", FAIL_TIMES.format(counter=str(project.root / "runs.txt"), failures=failures, how=how))
    project.write("pipeline.py", RETRY_PIPELINE.format(policies=policies))
    return project


def gaps(attempts) -> list[float]:
    """Seconds between the end of each attempt and the start of the next."""
    return [(b.started_at - a.ended_at).total_seconds() for a, b in zip(attempts, attempts[1:])]


def test_a_job_that_fails_twice_succeeds_on_its_third_attempt_with_back_off(project):
    flaky_project(project, failures=2, policies='RetryPolicy(on=["JobFailed", "Interrupted"], max_attempts=3, '
                                                'interval_seconds=0.3, backoff_rate=2.0)')
    finished = project.run()

    assert finished.status == "Succeeded"
    flaky = finished.steps["Flaky"]
    assert flaky.attempts == 3
    attempts = finished.execution.list_attempts("Flaky")
    assert [(a.attempt, a.status.value, a.failure_kind) for a in attempts] == [
        (1, "Failed", "JobFailed"), (2, "Failed", "JobFailed"), (3, "Succeeded", None)]
    assert "exited with code 1" in attempts[0].failure_reason and "run 1 fails" in attempts[0].failure_reason
    assert all(a.log_path and a.log_path.endswith(f"/{a.attempt}.log") for a in attempts)
    first_gap, second_gap = gaps(attempts)
    # floors the orchestrator keeps between its own records (how much later is up to the machine's load)
    assert first_gap >= 0.3 and second_gap >= 0.6, gaps(attempts)  # interval, then interval x 2
    assert project.read_output(flaky.outputs["out"], "result.txt") == "ok after 3"


def test_max_interval_seconds_caps_the_back_off(project):
    flaky_project(project, failures=2, policies='RetryPolicy(max_attempts=3, interval_seconds=0.2, '
                                                'backoff_rate=20.0, max_interval_seconds=0.4)')
    finished = project.run()
    assert finished.status == "Succeeded"
    first_gap, second_gap = gaps(finished.execution.list_attempts("Flaky"))
    assert first_gap >= 0.2 and second_gap >= 0.4  # the floors; the cap is the stored policy's arithmetic
    record = finished.execution.record()
    [stored] = pipeline_of(project.store(), record.pipeline_name, record.pipeline_version).steps
    assert [stored.retry_policies[0].delay_before(n) for n in (2, 3)] == [0.2, 0.4]  # 0.2 x 20 = 4 s uncapped


def test_a_step_that_keeps_failing_stops_after_max_attempts(project):
    flaky_project(project, failures=99, policies="RetryPolicy(max_attempts=2, interval_seconds=0)")
    finished = project.run()

    assert finished.status == "Failed"
    assert finished.steps["Flaky"].status.value == "Failed"
    assert [a.failure_kind for a in finished.execution.list_attempts("Flaky")] == ["JobFailed", "JobFailed"]
    assert (project.root / "runs.txt").read_text() == "2"
    assert "exited with code 1" in finished.failure_reason


def test_a_process_killed_by_a_signal_is_retried_as_interrupted(project):
    flaky_project(project, failures=1, how="kill",
                  policies='RetryPolicy(on=["Interrupted"], max_attempts=2, interval_seconds=0)')
    finished = project.run()

    assert finished.status == "Succeeded"
    first, second = finished.execution.list_attempts("Flaky")
    assert (first.failure_kind, second.status.value) == ("Interrupted", "Succeeded")
    assert "SIGKILL" in first.failure_reason


def test_a_failure_kind_no_policy_names_is_not_retried(project):
    flaky_project(project, failures=1, policies='RetryPolicy(on=["Interrupted", "Timeout"], max_attempts=5)')
    finished = project.run()

    assert finished.status == "Failed"
    assert [a.failure_kind for a in finished.execution.list_attempts("Flaky")] == ["JobFailed"]


def test_a_job_whose_stored_input_is_gone_is_retried_as_an_infrastructure_error(project):
    project.write("use.py", "print('never runs')\n")
    project.write("pipeline.py", """
        import os
        from forgeline.workflow import Pipeline, ProcessingInput, ProcessingStep, RetryPolicy

        lost = os.path.join(os.environ["FORGELINE_HOME"], "artifacts", "executions", "gone", "data.csv")
        use = ProcessingStep(name="Use", code="use.py", inputs=[ProcessingInput(source=lost, destination="in")],
                             retry_policies=[RetryPolicy(on=["InfrastructureError"], max_attempts=2,
                                                         interval_seconds=0)])
        pipeline = Pipeline(name="staging", steps=[use])
    """)
    finished = project.run()

    assert finished.status == "Failed"
    attempts = finished.execution.list_attempts("Use")
    assert [a.failure_kind for a in attempts] == ["InfrastructureError", "InfrastructureError"]
    assert "gone/data.csv does not exist" in attempts[0].failure_reason


def test_a_job_that_cannot_be_staged_for_the_users_reasons_is_retried_as_job_failed(project):
    project.write("use.py", "print('never runs')\n")
    project.write("pipeline.py", """
        from forgeline.workflow import Pipeline, ProcessingInput, ProcessingStep, RetryPolicy

        use = ProcessingStep(name="Use", code="use.py", source_dir="src",
                             inputs=[ProcessingInput(source="missing.csv", destination="in")],
                             retry_policies=[RetryPolicy(on=["JobFailed"], max_attempts=2, interval_seconds=0)])
        pipeline = Pipeline(name="staging", steps=[use])
    """)
    project.write("src/use.py", "print('never runs')\n")
    finished = project.run()

    assert finished.status == "Failed"
    attempts = finished.execution.list_attempts("Use")
    assert [a.failure_kind for a in attempts] == ["JobFailed", "JobFailed"]
    assert "missing.csv does not exist" in attempts[0].failure_reason


def test_a_job_past_its_time_limit_is_retried_as_a_timeout(project):
    project.write("train.py", """
        import time
        time.sleep(60)
    """)
    project.write("pipeline.py", """
        from forgeline.workflow import Pipeline, RetryPolicy, TrainingStep

        train = TrainingStep(name="Train", entry_point="train.py", max_run=1,
                             retry_policies=[RetryPolicy(on=["Timeout"], max_attempts=2, interval_seconds=0)])
        pipeline = Pipeline(name="timing-out", steps=[train])
    """)
    finished = project.run(timeout=60)

    assert finished.status == "Failed"
    attempts = finished.execution.list_attempts("Train")
    assert [a.failure_kind for a in attempts] == ["Timeout", "Timeout"]  # ended by max_run, not the 60 s sleep


CHAIN_PIPELINE = """
    from forgeline.workflow import ParameterString, Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep

    tag = ParameterString("Tag", default_value="default")
    first = ProcessingStep(name="First", code="first.py", arguments=[tag],
                           outputs=[ProcessingOutput(output_name="out", source="out")])
    second = ProcessingStep(name="Second", code="second.py", arguments=[tag],
                            inputs=[ProcessingInput(source=first.properties.outputs["out"], destination="in")],
                            outputs=[ProcessingOutput(output_name="out", source="out")])
    third = ProcessingStep(name="Third", code="third.py",
                           inputs=[ProcessingInput(source=second.properties.outputs["out"], destination="in")],
                           outputs=[ProcessingOutput(output_name="out", source="out")])
    side = ProcessingStep(name="Side", code="side.py", arguments=[tag],
                          outputs=[ProcessingOutput(output_name="out", source="out")])
    pipeline = Pipeline(name="chain", parameters=[tag], steps=[first, second, third, side])
"""

COUNTING = """
    import sys
    from pathlib import Path
    with open({log!r}, "a") as log:
        log.write({name!r} + "\\n")
"""


def chain_project(project):
    log = str(project.root / "ran.log")
    count = lambda name: COUNTING.format(log=log, name=name)  # noqa: E731
    project.write("first.py", count("First") + """
    Path("out/first.txt").write_text("first " + sys.argv[1])
    """)
    project.write("side.py", count("Side") + """
    Path("out/side.txt").write_text("side " + sys.argv[1])
    """)
    project.write("second.py", count("Second") + """
    import os
    if os.path.exists({broken!r}):
        sys.exit("second is broken")
    Path("out/second.txt").write_text(Path("in/first.txt").read_text() + " second " + sys.argv[1])
    """.format(broken=str(project.root / "broken")))
    project.write("third.py", count("Third") + """
    Path("out/third.txt").write_text(Path("in/second.txt").read_text() + " third")
    """)
    project.write("pipeline.py", CHAIN_PIPELINE)
    project.write("broken", "")
    return project


def runs(project) -> list[str]:
    log = project.root / "ran.log"
    names = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return sorted(names)


def test_retry_reruns_only_the_failed_and_not_run_steps_with_the_same_parameters(project, cli):
    chain_project(project)
    failed = project.run(parameters={"Tag": "v2"})
    assert failed.status == "Failed"
    assert failed.statuses() == {"First": "Succeeded", "Second": "Failed", "Third": "Skipped", "Side": "Succeeded"}
    assert runs(project) == ["First", "Second", "Side"]
    (project.root / "broken").unlink()

    retried = cli("executions", "retry", failed.execution.id, cwd=project.root)

    assert retried.returncode == 0, retried
    assert re.search(rf"execution {failed.execution.id} Succeeded", retried.stdout), retried
    assert runs(project) == ["Second", "Third"]  # First and Side were not run again, and caching is off
    execution = PipelineExecution.get(failed.execution.id)
    steps = {s.name: s for s in execution.list_steps()}
    assert {n: s.status.value for n, s in steps.items()} == dict.fromkeys(steps, "Succeeded")
    assert execution.parameters == {"Tag": "v2"}
    assert steps["First"].outputs == failed.steps["First"].outputs  # the first round's outputs, reused
    assert [(a.attempt, a.status.value) for a in execution.list_attempts("Second")] == [
        (1, "Failed"), (2, "Succeeded")]  # both rounds are in its history
    assert [a.attempt for a in execution.list_attempts("First")] == [1]
    assert project.read_output(steps["Third"].outputs["out"], "third.txt") == "first v2 second v2 third"

    described = cli("executions", "describe", failed.execution.id, cwd=project.root)
    assert "second is broken" in described.stdout, described  # the failed first attempt is still shown


def test_retry_refuses_a_succeeded_execution_and_a_running_one(project, cli, wait_until):
    chain_project(project)
    (project.root / "broken").unlink()
    done = project.run()
    refused = cli("executions", "retry", done.execution.id, cwd=project.root)
    assert refused.returncode == 1
    assert "succeeded: there is nothing to retry" in refused.stderr, refused

    project.write("first.py", "import time\ntime.sleep(30)\n")
    running = project.load().start()
    wait_until(lambda: running.list_steps()[0].status.value == "Executing", what="First to start")
    busy = cli("executions", "retry", running.id, cwd=project.root)
    assert busy.returncode == 1
    assert "is still Executing" in busy.stderr, busy
    running.stop()
    assert running.wait(timeout=30).value == "Stopped"


def test_retry_of_a_stopped_execution_reruns_the_stopped_steps(project, cli, wait_until):
    chain_project(project)
    (project.root / "broken").unlink()
    project.write("second.py", """
        import os, sys, time
        from pathlib import Path
        if not os.path.exists({calm!r}):
            time.sleep(30)
        Path("out/second.txt").write_text(Path("in/first.txt").read_text() + " second")
    """.format(calm=str(project.root / "calm")))
    execution = project.load().start()
    # Side runs beside Second; the stop comes once it has finished, so that only Second is cut short
    wait_until(lambda: {s.name: s.status.value for s in execution.list_steps()}
               | {"Third": None} == {"First": "Succeeded", "Second": "Executing", "Side": "Succeeded", "Third": None},
               what="Second to start and Side to finish")
    execution.stop()
    assert execution.wait(timeout=30).value == "Stopped"
    statuses = {s.name: s.status.value for s in execution.list_steps()}
    assert statuses == {"First": "Succeeded", "Second": "Stopped", "Side": "Succeeded", "Third": "Skipped"}
    runs(project)
    project.write("calm", "")

    retried = cli("executions", "retry", execution.id, cwd=project.root)

    assert retried.returncode == 0, retried
    assert runs(project) == ["Third"]  # First was kept; Second (not counting) and Third ran
    steps = {s.name: s for s in execution.list_steps()}
    assert all(s.status.value == "Succeeded" for s in steps.values())
    assert [a.status.value for a in execution.list_attempts("Second")] == ["Stopped", "Succeeded"]


def test_retry_policies_still_apply_when_a_failed_execution_is_retried(project, cli):
    # round 1: attempts 1 and 2 fail (max_attempts=2); round 2 (`executions retry`): attempt 3 fails and the
    # step's policy grants it one more attempt, which succeeds
    flaky_project(project, failures=3, policies="RetryPolicy(max_attempts=2, interval_seconds=0)")
    failed = project.run()
    assert failed.status == "Failed"

    retried = cli("executions", "retry", failed.execution.id, cwd=project.root)

    assert retried.returncode == 0, retried
    attempts = failed.execution.list_attempts("Flaky")
    assert [(a.attempt, a.status.value) for a in attempts] == [
        (1, "Failed"), (2, "Failed"), (3, "Failed"), (4, "Succeeded")]
