"""Faults a user hits in a job, each as they would hit it: endless log lines, huge arguments, outputs never
written, symlink loops, a job past its max_run, and processes a script leaves behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MB = 1024 * 1024


def last_attempt(finished, name: str):
    """The last attempt of a step."""
    return finished.execution.list_attempts(name)[-1]


ENDLESS_LOG_PIPELINE = """
    from forgeline.workflow import Pipeline, TrainingStep

    train = TrainingStep(name="Train", entry_point="train.py",
                         metric_definitions=[{"Name": "loss", "Regex": r"loss ([0-9.]+)"}])
    pipeline = Pipeline(name="endless-log", steps=[train])
"""

ENDLESS_LOG_TRAIN = """
    import sys

    for _ in range(200):
        sys.stdout.write("x" * 1048576)  # 200 MB and not one newline
    sys.stdout.write(" loss 0.25\\n")
    print("loss 0.125")
"""


def test_a_200_mb_log_line_without_newline_is_kept_whole_and_metrics_still_parse(project):
    project.write("pipeline.py", ENDLESS_LOG_PIPELINE)
    project.write("train.py", ENDLESS_LOG_TRAIN)

    finished = project.run(timeout=240)

    assert finished.status == "Succeeded", finished.failure_reason
    attempt = last_attempt(finished, "Train")
    log = Path(attempt.log_path)
    assert log.stat().st_size >= 200 * MB + len(" loss 0.25\nloss 0.125\n")
    with open(log, "rb") as handle:
        handle.seek(-64, os.SEEK_END)
        assert handle.read().endswith(b"xxxx loss 0.25\nloss 0.125\n")
    store = project.store()
    try:
        values = [point.value for point in store.list_metric_points(finished.execution.id, "Train", "loss")]
    finally:
        store.close()
    assert values == [0.125]  # the endless line was cut for the regex; the line after it still matches


HUGE_ARGUMENT_PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingStep

    step = ProcessingStep(name="Prepare", code="prepare.py", arguments=["--config", "x" * 1048576])
    pipeline = Pipeline(name="huge-argument", steps=[step])
"""


def test_a_1_mb_argument_is_refused_at_start_naming_the_step_and_the_argument(project, cli):
    project.write("pipeline.py", HUGE_ARGUMENT_PIPELINE)
    project.write("prepare.py", "print('never runs')\n")

    run = cli("run", "pipeline.py", cwd=project.root)

    assert run.returncode != 0
    assert "step 'Prepare': the value of --config is 1,048,576 bytes, over the 131,072 the operating system " \
           "allows one argument; pass large values in a file" in run.output
    assert "Argument list too long" not in run.output
    [record] = project.store().list_executions()
    attempt = project.store().list_attempts(record.id, "Prepare")[-1]
    assert attempt.failure_kind == "JobFailed"
    assert "never runs" not in Path(attempt.log_path).read_text()


MISSING_OUTPUT_PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingOutput, ProcessingStep

    step = ProcessingStep(name="Prepare", code="prepare.py",
                          outputs=[ProcessingOutput(output_name="train", source="train"),
                                   ProcessingOutput(output_name="extra", source="extra", optional=OPTIONAL)])
    pipeline = Pipeline(name="missing-output", steps=[step])
"""


@pytest.mark.parametrize("optional", [False, True])
def test_an_output_never_written_fails_its_step_by_name_unless_optional(project, optional):
    project.write("pipeline.py", MISSING_OUTPUT_PIPELINE.replace("OPTIONAL", str(optional)))
    project.write("prepare.py", "open('train/part-0.csv', 'w').write('a,b\\n')\n")

    finished = project.run()

    if optional:
        assert finished.status == "Succeeded", finished.failure_reason
        extra = Path(finished.steps["Prepare"].outputs["extra"])
        assert extra.is_dir() and not any(extra.iterdir())
        store = project.store()
        try:
            definition = store.get_pipeline_version("missing-output").definition
        finally:
            store.close()
        [outputs] = [s["Arguments"]["Outputs"] for s in definition["Steps"] if s["Name"] == "Prepare"]
        assert [o.get("Optional", False) for o in outputs] == [False, True]
    else:
        assert finished.status == "Failed"
        reason = finished.steps["Prepare"].failure_reason
        assert reason.startswith("output 'extra' was never written: its folder 'extra' is empty after the job")
        assert "optional=True" in reason
        assert last_attempt(finished, "Prepare").failure_kind == "JobFailed"


SYMLINK_PIPELINE = """
    from forgeline.workflow import CacheConfig, Pipeline, ProcessingInput, ProcessingStep

    step = ProcessingStep(name="Prepare", code="prepare.py", cache_config=CacheConfig(enable_caching=CACHED),
                          inputs=[ProcessingInput(source="data/current", destination="data")])
    pipeline = Pipeline(name="symlink-loop", steps=[step])
"""


@pytest.mark.parametrize("cached", [False, True])
def test_a_self_referencing_symlink_input_is_called_a_symlink_loop(project, cached):
    project.write("pipeline.py", SYMLINK_PIPELINE.replace("CACHED", str(cached)))
    project.write("prepare.py", "print('never runs')\n")
    (project.root / "data").mkdir()
    (project.root / "data" / "current").symlink_to("current")

    finished = project.run()

    assert finished.status == "Failed"
    reason = finished.steps["Prepare"].failure_reason
    assert reason == ("input 'data': data/current is a symlink loop (it points back to itself); "
                      "point it at real data")
    assert "does not exist" not in reason


MAX_RUN_PIPELINE = """
    from forgeline.workflow import Pipeline, TrainingStep

    train = TrainingStep(name="Train", entry_point="train.py", max_run=1)
    pipeline = Pipeline(name="too-slow", steps=[train])
"""


def test_a_training_job_past_its_max_run_names_max_run(project):
    project.write("pipeline.py", MAX_RUN_PIPELINE)
    project.write("train.py", "import time\ntime.sleep(120)\n")

    finished = project.run()

    assert finished.status == "Failed"
    reason = finished.steps["Train"].failure_reason
    assert reason.startswith("MaxRuntimeExceeded: job ran longer than 1 s")
    assert "max_run" in reason and "max_run_seconds" not in reason


LEFTOVER_PIPELINE = """
    import os
    from forgeline.workflow import Pipeline, ProcessingStep

    step = ProcessingStep(name="Serve", code="serve.py", env={"PID_FILE": os.environ["PID_FILE"]})
    pipeline = Pipeline(name="leftovers", steps=[step])
"""

# Two children outlive the script: one in the script's own process group, one that called setsid (a group signal
# misses it) and ignores SIGTERM. The script then ends as asked: exit 0, or it waits to be stopped.
LEFTOVER_SCRIPT = """
    import os, signal, subprocess, sys, time

    stay = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)  # MARKER"
    in_group = subprocess.Popen([sys.executable, "-c", stay.replace("MARKER", "leftover-in-group")])
    detached = subprocess.Popen([sys.executable, "-c", stay.replace("MARKER", "leftover-setsid")],
                                start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if os.environ.get("IGNORE_STOP") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(0.5)  # both children have set their SIGTERM handling by now
    with open(os.environ["PID_FILE"] + ".tmp", "w") as handle:
        handle.write(f"{in_group.pid} {detached.pid}")
    os.replace(os.environ["PID_FILE"] + ".tmp", os.environ["PID_FILE"])
    print("children started", flush=True)
    if os.environ.get("WAIT_FOR_STOP") == "1":
        time.sleep(600)
"""


def running_leftover(pid: int) -> bool:
    """Whether ``pid`` is still one of the test's leftover processes (not gone, not a zombie, not reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read()
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rpartition(b")")[2].split()[0]
    except OSError:
        return False
    return b"leftover-" in command and state != b"Z"


def leftover_project(project, tmp_path, monkeypatch, **env: str) -> Path:
    pid_file = tmp_path / "leftover-pids"
    monkeypatch.setenv("PID_FILE", str(pid_file))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    project.write("pipeline.py", LEFTOVER_PIPELINE)
    project.write("serve.py", LEFTOVER_SCRIPT)
    return pid_file


def test_processes_a_script_leaves_running_end_with_its_job(project, tmp_path, monkeypatch, wait_until):
    pid_file = leftover_project(project, tmp_path, monkeypatch)

    finished = project.run()

    assert finished.status == "Succeeded", finished.failure_reason
    pids = [int(p) for p in pid_file.read_text().split()]
    try:
        wait_until(lambda: not any(running_leftover(pid) for pid in pids), timeout=30, what="leftovers to end")
    finally:
        for pid in pids:
            if running_leftover(pid):
                os.kill(pid, 9)
    log = Path(last_attempt(finished, "Serve").log_path).read_text()
    assert "children started" in log
    assert f"[forgeline] ended 2 process(es) the script left running (pids {pids[0]}, {pids[1]})" in log


@pytest.mark.parametrize("script_ignores_stop", [False, True])
def test_stopping_a_job_ends_its_whole_process_tree_even_setsid_children(project, tmp_path, monkeypatch, wait_until,
                                                                         script_ignores_stop):
    pid_file = leftover_project(project, tmp_path, monkeypatch, WAIT_FOR_STOP="1",
                                IGNORE_STOP="1" if script_ignores_stop else "0")
    execution = project.load().start()
    wait_until(pid_file.exists, timeout=60, what="the script to start its children")
    pids = [int(p) for p in pid_file.read_text().split()]
    try:
        execution.stop()
        execution.wait(timeout=90)
        assert execution.record().status.value == "Stopped"
        wait_until(lambda: not any(running_leftover(pid) for pid in pids), timeout=30, what="the job's tree to end")
    finally:
        for pid in pids:
            if running_leftover(pid):
                os.kill(pid, 9)
