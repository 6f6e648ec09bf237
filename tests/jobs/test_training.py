"""Training jobs run real scripts in script mode: the contract, metrics, checkpoints, interruptions and limits."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from forgeline.jobs.control import JobControl
from forgeline.jobs.metrics import metric_series_path, read_metric_series
from forgeline.jobs.spec import (
    FailureKind,
    JobResult,
    JobSpec,
    JobStatus,
    MetricDefinition,
    StagedInput,
    TrainingSpec,
)
from forgeline.jobs.training import channel_destination, run_training_job, training_outputs
from forgeline.store.artifacts import ArtifactStore

from .conftest import write

EPOCHS = """
import os, sys, time
from pathlib import Path

checkpoint = Path(os.environ["SM_CHECKPOINT_DIR"]) / "epoch.txt"
start = int(checkpoint.read_text()) if checkpoint.exists() else 0
print(f"resuming after epoch {start}", flush=True)
for epoch in range(start + 1, int(sys.argv[sys.argv.index("--epochs") + 1]) + 1):
    print(f"epoch {epoch}", flush=True)
    print(f"loss {1 / epoch}", flush=True)
    if epoch == 4 and start == 0:  # the first start stops half way through epoch 4 until it is killed
        Path(os.environ["PID_FILE"]).write_text(f"{os.getpid()}\\n")
        time.sleep(60)
    temporary = checkpoint.with_name("epoch.tmp")
    temporary.write_text(str(epoch))
    os.replace(temporary, checkpoint)
Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text(f"trained from epoch {start + 1}")
"""


def training_spec(tmp_path: Path, code: Path, *, job: str = "train", inputs: tuple[StagedInput, ...] = (),
                  env: dict[str, str] | None = None, max_run_seconds: float | None = None,
                  **training: Any) -> JobSpec:
    training.setdefault("checkpoint_uri", str(tmp_path / "checkpoints" / job))
    return JobSpec(
        kind="training",
        job_id=f"exec-1/{job}/1",
        job_dir=str(tmp_path / "jobs" / job),
        log_path=str(tmp_path / "logs" / f"{job}.log"),
        inputs=inputs,
        outputs=training_outputs(str(tmp_path / "artifacts" / job / "model.tar.gz"),
                                 str(tmp_path / "artifacts" / job / "output_data")),
        env=env or {},
        code=str(code),
        working_dir=str(code.parent),
        max_run_seconds=max_run_seconds,
        training=TrainingSpec(**training),
    )


def run(spec: JobSpec, artifacts: ArtifactStore, control: JobControl | None = None) -> JobResult:
    return run_training_job(spec, artifacts, control or JobControl(), timeout_grace_seconds=1.0,
                            checkpoint_poll_seconds=0.1)


def wait_for_text(path: Path, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} was not written within {timeout} s")


def log_of(spec: JobSpec) -> str:
    return Path(spec.log_path).read_text()


def test_the_script_gets_hyperparameters_as_arguments_and_the_sagemaker_environment(tmp_path, project, artifacts):
    (project / "data").mkdir()
    (project / "data" / "rows.csv").write_text("1,2\n")
    code = write(project / "train.py", """
        import json, os, sys
        from pathlib import Path
        seen = {"argv": sys.argv[1:], "cwd": os.getcwd(),
                "env": {k: v for k, v in os.environ.items() if k.startswith(("SM_", "FORGELINE_", "OMP_"))},
                "train": os.listdir(os.environ["SM_CHANNEL_TRAIN"]),
                "config": json.loads(Path(os.environ["SM_INPUT_CONFIG_DIR"], "hyperparameters.json").read_text())}
        Path(os.environ["SM_OUTPUT_DATA_DIR"], "seen.json").write_text(json.dumps(seen))
        Path(os.environ["SM_MODEL_DIR"], "weights.txt").write_text("0.5")
        Path(os.environ["SM_MODEL_DIR"], "extra").mkdir()
        Path(os.environ["SM_MODEL_DIR"], "extra", "vocab.txt").write_text("a b")
        """)
    spec = training_spec(
        tmp_path, code, env={"OMP_NUM_THREADS": "1"}, channels=("train", "test"),
        inputs=(StagedInput("data", channel_destination("train")),
                StagedInput("data/rows.csv", channel_destination("test"))),
        hyperparameters={"num_epochs": 3, "learning_rate": 0.01, "optimizer": "adam", "shuffle": True},
        instance_type="ml.m5.xlarge", instance_count=2,
    )
    result = run(spec, artifacts)

    assert result.status is JobStatus.SUCCEEDED, result.failure_reason
    model_uri = str(tmp_path / "artifacts" / "train" / "model.tar.gz")
    assert result.outputs == {"model": model_uri, "output_data": str(tmp_path / "artifacts" / "train" / "output_data")}
    assert result.properties["model_artifacts"] == model_uri
    assert result.properties["instance_type"] == "ml.m5.xlarge" and result.properties["instance_count"] == 2
    seen = json.loads((Path(result.outputs["output_data"]) / "seen.json").read_text())
    assert seen["argv"] == ["--num_epochs", "3", "--learning_rate", "0.01", "--optimizer", "adam", "--shuffle", "true"]
    job_dir = Path(spec.job_dir)
    env = seen["env"]
    assert seen["cwd"] == str(job_dir)
    assert env["SM_MODEL_DIR"] == str(job_dir / "model")
    assert env["SM_OUTPUT_DATA_DIR"] == str(job_dir / "output" / "data")
    assert env["SM_CHANNEL_TRAIN"] == str(job_dir / "input" / "data" / "train")
    assert env["SM_CHANNEL_TEST"] == str(job_dir / "input" / "data" / "test")
    assert env["SM_CHECKPOINT_DIR"] == env["FORGELINE_CHECKPOINT_DIR"] == str(job_dir / "checkpoints")
    assert json.loads(env["SM_CHANNELS"]) == ["test", "train"]
    assert json.loads(env["SM_HPS"]) == {"num_epochs": 3, "learning_rate": 0.01, "optimizer": "adam", "shuffle": True}
    assert int(env["SM_NUM_CPUS"]) >= 1
    assert env["SM_CURRENT_HOST"] == "algo-1" and json.loads(env["SM_HOSTS"]) == ["algo-1"]
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "ml.m5.xlarge"
    assert env["OMP_NUM_THREADS"] == "1"
    assert seen["train"] == ["rows.csv"]
    assert seen["config"]["num_epochs"] == "3"
    with tarfile.open(model_uri) as archive:  # the content of the model dir, at the root of the archive
        assert sorted(archive.getnames()) == ["extra", "extra/vocab.txt", "weights.txt"]
        assert archive.extractfile("weights.txt").read() == b"0.5"


def test_metrics_are_parsed_from_stdout_and_stderr_in_the_order_they_were_printed(tmp_path, project, artifacts):
    code = write(project / "train.py", """
        import sys, time
        for epoch in range(1, 4):
            print(f"epoch {epoch} training_ap 0.{epoch}", flush=True)
            time.sleep(0.1)  # lines of two pipes keep their order when they are apart in time
            print(f"testing_ap 0.{epoch}1 (from stderr)", file=sys.stderr, flush=True)
            time.sleep(0.1)
        print("training_ap not-a-number", flush=True)
        """)
    spec = training_spec(tmp_path, code, metric_definitions=(
        MetricDefinition("training_ap", r"training_ap ([0-9.]+)"),
        MetricDefinition("testing_ap", r"testing_ap ([0-9.]+)"),
    ))
    result = run(spec, artifacts)

    assert result.status is JobStatus.SUCCEEDED, result.failure_reason
    assert [(s.name, s.value) for s in result.metrics] == [
        ("training_ap", 0.1), ("testing_ap", 0.11), ("training_ap", 0.2), ("testing_ap", 0.21),
        ("training_ap", 0.3), ("testing_ap", 0.31),
    ]
    assert [s.seq for s in result.metrics] == [1, 2, 3, 4, 5, 6]
    assert {s.attempt for s in result.metrics} == {1}
    assert all(a.timestamp <= b.timestamp for a, b in zip(result.metrics, result.metrics[1:], strict=False))
    # The same samples went to the series file next to the log as they were parsed.
    assert read_metric_series(metric_series_path(spec.log_path)) == list(result.metrics)


def test_metric_samples_can_be_read_while_the_job_runs(tmp_path, project, artifacts):
    release = tmp_path / "release"
    code = write(project / "train.py", f"""
        import time
        from pathlib import Path
        print("loss 0.75", flush=True)
        while not Path({str(release)!r}).exists():
            time.sleep(0.02)
        """)
    spec = training_spec(tmp_path, code, metric_definitions=(MetricDefinition("loss", r"loss (\S+)"),))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run, spec, artifacts)
        try:
            deadline = time.monotonic() + 20
            while not read_metric_series(metric_series_path(spec.log_path)):
                assert time.monotonic() < deadline and not future.done(), "no sample appeared while the job ran"
                time.sleep(0.02)
            [sample] = read_metric_series(metric_series_path(spec.log_path))
            assert (sample.name, sample.value, sample.attempt) == ("loss", 0.75, 1)
        finally:
            release.touch()
        assert future.result(timeout=20).status is JobStatus.SUCCEEDED


def test_checkpoints_are_restored_first_and_uploaded_while_the_job_runs(tmp_path, project, artifacts):
    checkpoint_uri = tmp_path / "previous-run-checkpoints"
    (checkpoint_uri / "nested").mkdir(parents=True)
    (checkpoint_uri / "nested" / "state.txt").write_text("epoch 7")
    code = write(project / "train.py", """
        import os, time
        from pathlib import Path
        local = Path(os.environ["SM_CHECKPOINT_DIR"])
        print("restored:", (local / "nested" / "state.txt").read_text(), flush=True)
        (local / "epoch-8.txt").write_text("epoch 8")
        remote = Path(os.environ["CHECKPOINT_URI"]) / "epoch-8.txt"
        deadline = time.monotonic() + 15
        while not remote.exists():
            assert time.monotonic() < deadline, "the checkpoint was not uploaded while the job ran"
            time.sleep(0.05)
        print("uploaded while running:", remote.read_text(), flush=True)
        (local / "final.txt").write_text("written last")
        """)
    spec = training_spec(tmp_path, code, checkpoint_uri=str(checkpoint_uri), env={"CHECKPOINT_URI": str(checkpoint_uri)})
    result = run(spec, artifacts)

    assert result.status is JobStatus.SUCCEEDED, result.failure_reason
    log = log_of(spec)
    assert "restored: epoch 7" in log and "uploaded while running: epoch 8" in log
    assert (checkpoint_uri / "final.txt").read_text() == "written last"  # the last pass after the exit
    assert (checkpoint_uri / "nested" / "state.txt").read_text() == "epoch 7"


def kill_when_ready(pid_file: Path, delay: float = 0.0) -> threading.Thread:
    def kill() -> None:
        pid = int(wait_for_text(pid_file))
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_a_spot_job_killed_mid_epoch_restarts_from_its_last_checkpoint(tmp_path, project, artifacts):
    code = write(project / "train.py", EPOCHS)
    pid_file = tmp_path / "pid"
    spec = training_spec(tmp_path, code, env={"PID_FILE": str(pid_file)}, hyperparameters={"epochs": 6},
                         metric_definitions=(MetricDefinition("loss", r"loss ([0-9.]+)"),),
                         restart_on_interruption=True, max_wait_seconds=120)
    killer = kill_when_ready(pid_file)
    result = run(spec, artifacts)
    killer.join(5)

    assert result.status is JobStatus.SUCCEEDED, result.failure_reason
    log = log_of(spec)
    first, _, second = log.partition("[forgeline] training was killed by signal SIGKILL")
    assert second, log
    assert [line for line in first.splitlines() if line.startswith("epoch")] == [
        "epoch 1", "epoch 2", "epoch 3", "epoch 4"]
    # The restart resumed after the checkpointed epoch 3: epochs 1-3 are not trained again.
    assert "resuming after epoch 3" in second
    assert [line for line in second.splitlines() if line.startswith("epoch")] == ["epoch 4", "epoch 5", "epoch 6"]
    [interruption] = result.properties["interruptions"]
    assert interruption["reason"] == "killed by signal SIGKILL"
    assert interruption["at"]  # an ISO timestamp
    assert [(s.attempt, s.value) for s in result.metrics] == [
        (1, 1.0), (1, 0.5), (1, 1 / 3), (1, 0.25), (2, 0.25), (2, 0.2), (2, 1 / 6)]
    with tarfile.open(result.outputs["model"]) as archive:
        assert archive.extractfile("model.txt").read() == b"trained from epoch 4"


def test_without_spot_a_killed_job_fails_as_interrupted(tmp_path, project, artifacts):
    code = write(project / "train.py", EPOCHS)
    pid_file = tmp_path / "pid"
    spec = training_spec(tmp_path, code, env={"PID_FILE": str(pid_file)}, hyperparameters={"epochs": 6})
    killer = kill_when_ready(pid_file)
    result = run(spec, artifacts)
    killer.join(5)

    assert result.status is JobStatus.FAILED
    assert result.failure_kind is FailureKind.INTERRUPTED
    assert "killed by signal SIGKILL" in (result.failure_reason or "")
    assert result.properties["interruptions"] == []
    assert (tmp_path / "checkpoints" / "train" / "epoch.txt").read_text() == "3"  # uploaded all the same


def test_a_spot_job_is_not_restarted_once_max_wait_has_passed(tmp_path, project, artifacts):
    code = write(project / "train.py", EPOCHS)
    pid_file = tmp_path / "pid"
    spec = training_spec(tmp_path, code, env={"PID_FILE": str(pid_file)}, hyperparameters={"epochs": 6},
                         restart_on_interruption=True, max_wait_seconds=0.2)
    killer = kill_when_ready(pid_file, delay=0.3)
    result = run(spec, artifacts)
    killer.join(5)

    assert result.failure_kind is FailureKind.INTERRUPTED
    assert "not restarted" in (result.failure_reason or "") and "max_wait" in (result.failure_reason or "")


def test_a_job_past_max_run_is_ended_with_max_runtime_exceeded(tmp_path, project, artifacts):
    code = write(project / "train.py", """
        import time
        print("training forever", flush=True)
        time.sleep(60)
        """)
    result = run(training_spec(tmp_path, code, max_run_seconds=0.5, restart_on_interruption=True,
                               max_wait_seconds=60), artifacts)

    assert result.status is JobStatus.FAILED
    assert result.failure_kind is FailureKind.TIMEOUT
    assert "MaxRuntimeExceeded" in (result.failure_reason or "")
    assert result.properties["interruptions"] == []  # forgeline's own SIGTERM is no interruption


def test_stopping_a_training_job_ends_it_as_stopped(tmp_path, project, artifacts):
    ready = tmp_path / "ready"
    code = write(project / "train.py", f"""
        import time
        from pathlib import Path
        Path({str(ready)!r}).write_text("running\\n")
        time.sleep(60)
        """)
    control = JobControl()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run, training_spec(tmp_path, code, restart_on_interruption=True, max_wait_seconds=60),
                             artifacts, control)
        wait_for_text(ready)
        control.stop(grace_seconds=1.0)
        result = future.result(timeout=20)

    assert result.status is JobStatus.STOPPED
    assert result.properties["interruptions"] == []


def test_a_spot_job_stopped_and_killed_at_once_is_stopped_not_restarted(tmp_path, project, artifacts):
    code = write(project / "train.py", EPOCHS)
    pid_file = tmp_path / "pid"
    spec = training_spec(tmp_path, code, env={"PID_FILE": str(pid_file)}, hyperparameters={"epochs": 6},
                         restart_on_interruption=True, max_wait_seconds=60)
    control = JobControl()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run, spec, artifacts, control)
        pid = int(wait_for_text(pid_file))
        control.stop(grace_seconds=1.0)  # ends the first start...
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # ...which an outside kill may beat: either way the job is Stopped
        result = future.result(timeout=20)

    assert result.status is JobStatus.STOPPED
