"""Step events: what an execution did, in order, each with a cursor a reader continues from.

A real orchestrator runs a two-step pipeline whose second step waits for a release file, so the test reads
the events while it runs and again after its end, synchronising on the events themselves.
"""

from __future__ import annotations

import re

from cli.test_main import run_in_terminal

GATED = """
    import sys, time
    from pathlib import Path
    while not Path(sys.argv[1]).exists():
        time.sleep(0.02)
    print("released")
"""


def events_project(project):
    gate = project.root / "release"
    project.write("gated.py", GATED)
    project.write("first.py", "print('first')\n")
    project.write("pipeline.py", f"""
        from forgeline.workflow import Pipeline, ProcessingStep

        first = ProcessingStep(name="First", code="first.py")
        second = ProcessingStep(name="Second", code="gated.py", arguments=[{str(gate)!r}], depends_on=[first])
        pipeline = Pipeline(name="events", steps=[first, second])
    """)
    return gate


def summary(events):
    return [(e.kind.value, e.step_name, e.attempt, e.status) for e in events]


def test_events_come_in_order_and_a_cursor_gives_only_newer_ones(project, wait_until):
    gate = events_project(project)
    execution = project.load().start()

    def second_started():
        events = execution.events()
        return events if ("step", "Second", None, "Executing") in summary(events) else None

    before = wait_until(second_started, timeout=60, what="the second step's events")
    cursor = before[-1].id
    gate.write_text("")
    assert execution.wait(timeout=90).value == "Succeeded"

    later = execution.events(after=cursor)
    everything = execution.events()
    assert later and all(event.id > cursor for event in later)
    assert everything == before + later  # nothing missed, nothing twice
    cursors = [event.id for event in everything]
    assert cursors == sorted(set(cursors))  # strictly increasing
    assert execution.events(after=everything[-1].id) == []
    expected = [("execution", None, None, "Executing")]
    for step in ("First", "Second"):
        expected += [("attempt", step, 1, "Executing"), ("log", step, 1, None), ("step", step, None, "Executing"),
                     ("attempt", step, 1, "Succeeded"), ("step", step, None, "Succeeded")]
    expected.append(("execution", None, None, "Succeeded"))
    assert summary(everything) == expected
    logs = {event.step_name: event.payload["path"] for event in everything if event.kind.value == "log"}
    assert {step: attempt.log_path for step, attempt in
            ((a.step_name, a) for a in execution.list_attempts())} == logs


def test_a_failed_step_and_its_execution_say_why_in_their_events(project):
    project.write("boom.py", "raise SystemExit(3)\n")
    project.write("pipeline.py", """
        from forgeline.workflow import Pipeline, ProcessingStep

        pipeline = Pipeline(name="boom", steps=[ProcessingStep(name="Boom", code="boom.py")])
    """)
    finished = project.run()
    assert finished.status == "Failed"
    events = finished.execution.events()
    attempt_end, step_end, execution_end = events[-3:]
    assert (attempt_end.status, attempt_end.payload["failure_kind"]) == ("Failed", "JobFailed")
    assert "exited with code 3" in attempt_end.payload["failure_reason"]
    assert (step_end.step_name, step_end.status) == ("Boom", "Failed")
    assert execution_end.status == "Failed" and "exited with code 3" in execution_end.payload["failure_reason"]


def test_forgeline_run_in_a_terminal_follows_the_events_to_the_end(project):
    gate = events_project(project)
    gate.write_text("")  # the second step does not wait: this is about the watcher seeing the end

    code, output = run_in_terminal(["run", "pipeline.py"], project.root, columns=120)

    assert code == 0, output
    [record] = project.store().list_executions()
    assert re.search(rf"execution {record.id} Succeeded", output), output
    assert "First" in output and "Second" in output
