"""Spot restarts leave a trace: each restart of a killed spot training job is an attempt of its own.

The training script is killed for real (SIGKILL from outside, as a reclaimed spot instance or the OOM killer
would), twice, each time once it has told the test (a pid file) that it reached the epoch to be killed in.
"""

from __future__ import annotations

import os
import re
import signal

TRAIN = """
    import os, sys, time
    from pathlib import Path

    checkpoints = Path(os.environ["SM_CHECKPOINT_DIR"])
    done = sorted(checkpoints.glob("ckpt-*.txt"))
    start = int(done[-1].read_text()) if done else 0
    root = Path(os.environ["PROJECT_ROOT"])
    for epoch in range(start + 1, 6):
        print(f"accuracy {epoch / 10}", flush=True)
        if epoch in (2, 4) and not (root / f"killed-at-{epoch}").exists():
            (root / f"killed-at-{epoch}").write_text("")
            (root / f"pid-{epoch}").write_text(str(os.getpid()))
            time.sleep(120)  # killed from outside long before
        temporary = checkpoints / "next.tmp"
        temporary.write_text(str(epoch))
        os.replace(temporary, checkpoints / f"ckpt-{epoch:04d}.txt")
    Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text(f"trained from epoch {start}")
"""

PIPELINE = """
    import os
    from forgeline.workflow import Pipeline, TrainingStep

    train = TrainingStep(
        name="Train", entry_point="train.py", source_dir="code", use_spot_instances=True, max_run=300, max_wait=600,
        metric_definitions=[{"Name": "accuracy", "Regex": r"accuracy ([0-9.]+)"}],
        environment={"PROJECT_ROOT": os.environ["PROJECT_ROOT"]},
    )
    pipeline = Pipeline(name="spot", steps=[train])
"""


def kill_at(project, epoch: int, wait_until) -> None:
    pid_file = project.root / f"pid-{epoch}"
    pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=60,
                         what=f"the training script to reach epoch {epoch}"))
    os.kill(pid, signal.SIGKILL)


def test_each_spot_restart_is_an_interrupted_attempt_with_its_signal_and_checkpoint(project, monkeypatch, cli,
                                                                                   wait_until, wait_for_end):
    monkeypatch.setenv("PROJECT_ROOT", str(project.root))
    project.write("code/train.py", TRAIN)
    project.write("pipeline.py", PIPELINE)
    execution = project.load().start()
    kill_at(project, 2, wait_until)
    kill_at(project, 4, wait_until)
    finished = wait_for_end(execution, timeout=120)

    assert finished.status == "Succeeded", finished.failure_reason
    train = finished.steps["Train"]
    assert train.attempts == 3
    first, second, last = execution.list_attempts("Train")
    assert [(a.attempt, a.status.value, a.failure_kind) for a in (first, second, last)] == [
        (1, "Interrupted", "Interrupted"), (2, "Interrupted", "Interrupted"), (3, "Succeeded", None)]
    assert re.fullmatch(r"killed by signal SIGKILL, which forgeline did not send; "
                        r"restarted from checkpoint \S+ \(ckpt-0001\.txt\)", first.failure_reason), first
    assert second.failure_reason.endswith("(ckpt-0001.txt, ckpt-0002.txt, ckpt-0003.txt)"), second
    assert first.ended_at <= second.started_at and second.ended_at <= last.started_at
    assert first.log_path == second.log_path == last.log_path  # one job, one log with every start in it
    assert [i["resumed_from"].endswith("(ckpt-0001.txt)") for i in train.properties["interruptions"]] == [
        True, False]

    # the metric series of each start is filed under its attempt
    points = project.store().list_metric_points(execution.id, "Train", "accuracy")
    assert [(p.attempt, p.value) for p in points] == [
        (1, 0.1), (1, 0.2), (2, 0.2), (2, 0.3), (2, 0.4), (3, 0.4), (3, 0.5)]

    described = cli("executions", "describe", execution.id, cwd=project.root)
    assert described.returncode == 0, described
    text = described.stdout
    assert re.search(r"Train\s+1\s+Interrupted", text) and re.search(r"Train\s+2\s+Interrupted", text), text
    assert re.search(r"Train\s+3\s+Succeeded", text), text
    assert "Train attempt 2: Interrupted: killed by signal SIGKILL" in text.replace("\n  ", " "), text
    assert re.search(r"Train\s+Training\s+Succeeded\s+3", text), text  # the steps table counts them
