"""ExecutorContract: behaviour every Executor must have; subclass it and override `executor` and `script_job`.

`script_job(text)` returns a JobSpec of a processing job running the Python script ``text`` in a fresh job
directory, with a unique job id; the script may write files in its working directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from forgeline.errors import JobError
from forgeline.executors.base import Executor, JobRef
from forgeline.jobs.spec import CollectedOutput, FailureKind, JobKind, JobSpec, JobStatus
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.snapshots import save_snapshot

ScriptJob = Callable[[str], JobSpec]

SLEEPER = "import time\nopen('ready.txt', 'w').write('ready')\ntime.sleep(60)\n"
DEADLINE_SECONDS = 30.0


def started(spec: JobSpec) -> None:
    """Wait until a SLEEPER job has written its ready file."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not (Path(spec.job_dir) / "ready.txt").exists():
        assert time.monotonic() < deadline, f"job {spec.job_id} did not start within {DEADLINE_SECONDS} s"
        time.sleep(0.01)


class ExecutorContract:
    """What the engine relies on from an executor."""

    @pytest.fixture
    def executor(self) -> Executor:
        raise NotImplementedError

    @pytest.fixture
    def script_job(self) -> ScriptJob:
        raise NotImplementedError

    def test_a_job_that_ends_well_gives_a_succeeded_result_to_wait_and_poll(self, executor, script_job):
        ref = executor.submit(script_job("print('hello')\n"))
        assert isinstance(ref, JobRef) and isinstance(ref.id, str)
        result = executor.wait(ref, timeout=DEADLINE_SECONDS)
        assert result is not None and result.status is JobStatus.SUCCEEDED
        assert executor.poll(ref) == result  # asked again, the same result

    def test_a_failing_job_is_a_failed_result_not_an_exception(self, executor, script_job):
        ref = executor.submit(script_job("raise SystemExit(3)\n"))
        result = executor.wait(ref, timeout=DEADLINE_SECONDS)
        assert result.status is JobStatus.FAILED and result.failure_kind is FailureKind.JOB_FAILED
        assert result.exit_code == 3

    def test_poll_and_a_short_wait_say_nothing_while_the_job_runs(self, executor, script_job):
        spec = script_job(SLEEPER)
        ref = executor.submit(spec)
        started(spec)
        assert executor.poll(ref) is None
        assert executor.wait(ref, timeout=0.05) is None
        executor.cancel(ref, grace_seconds=1.0)

    def test_cancel_ends_a_running_job_as_stopped(self, executor, script_job):
        spec = script_job(SLEEPER)
        ref = executor.submit(spec)
        started(spec)
        executor.cancel(ref, grace_seconds=1.0)
        assert executor.wait(ref, timeout=DEADLINE_SECONDS).status is JobStatus.STOPPED

    def test_wait_any_returns_the_jobs_that_ended_and_not_the_others(self, executor, script_job):
        sleeper = script_job(SLEEPER)
        running = executor.submit(sleeper)
        quick = executor.submit(script_job("pass\n"))
        started(sleeper)
        deadline = time.monotonic() + DEADLINE_SECONDS
        ended: list[JobRef] = []
        while not ended:
            assert time.monotonic() < deadline
            ended = executor.wait_any([running, quick], timeout=1.0)
        assert ended == [quick]
        assert executor.wait_any([running], timeout=0.05) == []
        executor.cancel(running, grace_seconds=1.0)

    def test_logs_hold_what_the_job_printed_on_both_streams(self, executor, script_job):
        ref = executor.submit(script_job("import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n"))
        executor.wait(ref, timeout=DEADLINE_SECONDS)
        text = executor.logs(ref)
        assert "to stdout" in text and "to stderr" in text

    def test_a_reference_it_did_not_make_is_refused(self, executor):
        with pytest.raises(JobError, match="was not submitted to this executor"):
            executor.poll(JobRef("nobody/made/this"))

    def test_a_job_id_submitted_twice_is_refused(self, executor, script_job):
        spec = script_job("pass\n")
        executor.wait(executor.submit(spec), timeout=DEADLINE_SECONDS)
        with pytest.raises(JobError, match="already submitted"):
            executor.submit(spec)

    def test_a_spec_read_back_from_json_runs_alike(self, executor, script_job):
        spec = JobSpec.from_json(script_job("print('from json')\n").to_json())
        ref = executor.submit(spec)
        assert executor.wait(ref, timeout=DEADLINE_SECONDS).status is JobStatus.SUCCEEDED
        assert "from json" in executor.logs(ref)

    def test_recover_ends_a_job_an_earlier_executor_left_running(self, executor, script_job, fresh_executor):
        spec = script_job(SLEEPER)
        executor.submit(spec)
        started(spec)
        successor = fresh_executor()
        try:
            assert successor.recover(spec) is None  # not ended: ended now, to be run again
            assert executor.wait(JobRef(spec.job_id), timeout=DEADLINE_SECONDS).status is not JobStatus.SUCCEEDED
        finally:
            successor.shutdown()

    def test_cancel_ends_a_job_an_earlier_executor_left_running_from_its_rebuilt_reference(
            self, executor, script_job, fresh_executor):
        spec = script_job(SLEEPER)
        executor.submit(spec)
        started(spec)
        successor = fresh_executor()
        try:
            successor.cancel(JobRef(spec.job_id), grace_seconds=1.0)  # as a dead orchestrator's attempt names it
            assert executor.wait(JobRef(spec.job_id), timeout=DEADLINE_SECONDS).status is not JobStatus.SUCCEEDED
        finally:
            successor.shutdown()

    def test_a_location_free_job_runs_its_code_snapshot_wherever_the_executor_places_it(self, executor, artifacts,
                                                                                         tmp_path):
        spec = location_free_job(artifacts, tmp_path, "from helper import TEXT\nprint('ran', TEXT)\n"
                                 "open('out/done.txt', 'w').write(TEXT)\n")
        assert (spec.job_dir, spec.log_path) == ("", "")  # the executor's to choose
        assert JobSpec.from_json(spec.to_json()) == spec
        location = executor.log_location(spec)
        assert location and executor.log_location(spec) == location
        ref = executor.submit(spec)
        result = executor.wait(ref, timeout=DEADLINE_SECONDS)
        assert result.status is JobStatus.SUCCEEDED, result.failure_reason
        assert artifacts.read_bytes(result.outputs["out"] + "/done.txt") == b"from the snapshot"
        assert "ran from the snapshot" in executor.logs(ref)


def location_free_job(artifacts: ArtifactStore, tmp_path: Path, text: str) -> JobSpec:
    """A processing job whose code exists only as a snapshot in the artifact store (its local files are gone)."""
    folder = tmp_path / "snapshotted"
    folder.mkdir()
    (folder / "job.py").write_text(text)
    (folder / "helper.py").write_text("TEXT = 'from the snapshot'\n")
    snapshot = save_snapshot(artifacts, {"code/job.py": folder / "job.py", "code/helper.py": folder / "helper.py"})
    for file in folder.iterdir():
        file.unlink()
    return JobSpec(kind=JobKind.PROCESSING, job_id=f"located-{tmp_path.name}/Step/1", code_snapshot=snapshot,
                   code="code/job.py", source_dir="code",
                   outputs=(CollectedOutput("out", "out", artifacts.uri("contract", tmp_path.name, "out")),))
