"""The orchestrator in this process over a real SQLite store, with jobs played by a scripted executor.

Covers what the scheduling rules look like once recorded — statuses, attempts, reasons, fan-in — without
starting a process or depending on timing: every job ends the moment the script says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from forgeline.config import Settings
from forgeline.engine.launch import create_execution
from forgeline.engine.orchestrator import Orchestrator
from forgeline.engine.runtime import Runtime
from forgeline.executors.base import JobRef
from forgeline.jobs.spec import FailureKind, JobResult, JobSpec, JobStatus
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.records import ExecutionStatus, StepStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.workflow import (
    ConditionEquals,
    ConditionStep,
    FailStep,
    ForEach,
    ForEachItem,
    ParallelismConfiguration,
    ParameterString,
    Pipeline,
    ProcessingStep,
    RetryPolicy,
)
from forgeline.workflow.policies import CacheConfig, SelectiveExecutionConfig
from forgeline.workflow.steps import step

FAILED = JobResult(JobStatus.FAILED, failure_kind=FailureKind.JOB_FAILED, failure_reason="exit code 3")
OK = JobResult(JobStatus.SUCCEEDED)


class ScriptedExecutor:
    """Plays each job by step name: a list of results, one per attempt; None keeps the job running until cancelled."""

    def __init__(self, results: dict[str, list[JobResult | None]], on_submit: Callable[[str], None] = lambda _: None):
        self.results = results
        self.on_submit = on_submit
        self.submitted: list[str] = []
        self.ended: dict[JobRef, JobResult | None] = {}

    def submit(self, spec: JobSpec, on_restart=None) -> JobRef:
        step = spec.job_id.split("/")[1]
        self.submitted.append(step)
        planned = self.results.get(step, [OK])
        ref = JobRef(spec.job_id)
        self.ended[ref] = planned[min(self.submitted.count(step), len(planned)) - 1]
        self.on_submit(step)
        return ref

    def poll(self, ref: JobRef) -> JobResult | None:
        return self.ended[ref]

    def wait(self, ref: JobRef, timeout: float | None = None) -> JobResult | None:
        return self.ended[ref]

    def wait_any(self, refs, timeout=None) -> list[JobRef]:
        ended = [ref for ref in refs if self.ended[ref] is not None]
        if not ended and timeout:
            time.sleep(timeout)  # nothing will end by itself: the orchestrator polls for a stop meanwhile
        return ended

    def cancel(self, ref: JobRef, grace_seconds: float = 10.0) -> None:
        if self.ended[ref] is None:
            self.ended[ref] = JobResult(JobStatus.STOPPED, failure_reason="stopped")

    def logs(self, ref: JobRef) -> str:
        return ""

    def log_location(self, spec: JobSpec) -> str:
        return f"{spec.job_id}.log"

    def recover(self, spec: JobSpec) -> JobResult | None:
        return None

    def shutdown(self) -> None:
        pass


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "job.py").write_text("print('a job')\n")
        self.settings = Settings.from_env({"FORGELINE_HOME": str(root / ".forgeline")})
        self.store = SqlMetadataStore(self.settings.database_url)
        self.artifacts = ArtifactStore(self.settings.artifact_root)

    def run(self, pipeline: Pipeline, executor: ScriptedExecutor, parameters=None,
            selective: SelectiveExecutionConfig | None = None) -> str:
        execution_id = create_execution(pipeline, parameters or {}, self.store, str(self.root), selective)
        runtime = Runtime(self.settings, self.store, self.artifacts, lambda _: executor)
        Orchestrator(execution_id, runtime).run()
        return execution_id

    def steps(self, execution_id: str) -> dict:
        return {r.name: r for r in self.store.list_step_runs(execution_id)}


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    monkeypatch.chdir(tmp_path)
    return Project(tmp_path)


def job(name: str, *after, retries=None, arguments=None, cache_config=None) -> ProcessingStep:
    return ProcessingStep(name=name, code="job.py", depends_on=list(after), retry_policies=retries,
                          arguments=arguments, cache_config=cache_config)


def test_a_failed_job_skips_its_downstream_steps_and_fails_the_execution(project):
    a = job("A")
    b = job("B", a)
    side = job("Side")
    executor = ScriptedExecutor({"A": [FAILED]})
    execution = project.run(Pipeline(name="p", steps=[a, b, side]), executor)
    steps = project.steps(execution)
    assert steps["A"].status == StepStatus.FAILED and steps["A"].failure_reason == "exit code 3"
    assert steps["B"].status == StepStatus.SKIPPED and steps["B"].failure_reason == "upstream step 'A' failed"
    assert steps["Side"].status == StepStatus.SUCCEEDED
    record = project.store.get_execution(execution)
    assert record.status == ExecutionStatus.FAILED and record.failure_reason == "step 'A' failed: exit code 3"
    assert sorted(executor.submitted) == ["A", "Side"]


def test_retries_record_each_attempt_and_the_step_succeeds_on_its_third(project):
    a = job("A", retries=[RetryPolicy(on=["JobFailed"], max_attempts=3, interval_seconds=0.001)])
    execution = project.run(Pipeline(name="p", steps=[a]), ScriptedExecutor({"A": [FAILED, FAILED, OK]}))
    attempts = project.store.list_attempts(execution, "A")
    assert [a.status for a in attempts] == [StepStatus.FAILED, StepStatus.FAILED, StepStatus.SUCCEEDED]
    assert attempts[0].failure_kind == "JobFailed"
    run = project.steps(execution)["A"]
    assert run.status == StepStatus.SUCCEEDED and run.attempts == 3 and run.failure_reason is None


def test_a_spent_retry_policy_fails_the_step_after_max_attempts(project):
    a = job("A", retries=[RetryPolicy(on=["JobFailed"], max_attempts=2, interval_seconds=0.001)])
    execution = project.run(Pipeline(name="p", steps=[a]), ScriptedExecutor({"A": [FAILED]}))
    assert len(project.store.list_attempts(execution, "A")) == 2
    assert project.store.get_execution(execution).status == ExecutionStatus.FAILED


def test_a_condition_runs_one_branch_and_a_property_of_it_is_recorded(project):
    choice = ParameterString("Choice", default_value="left")
    left, right = job("Left"), job("Right")
    cond = ConditionStep(name="Which", conditions=[ConditionEquals(choice, "left")], if_steps=[left],
                         else_steps=[right])
    pipeline = Pipeline(name="p", parameters=[choice], steps=[cond])
    executor = ScriptedExecutor({})
    execution = project.run(pipeline, executor, {"Choice": "right"})
    steps = project.steps(execution)
    assert steps["Which"].properties == {"outcome": False}
    assert steps["Left"].status == StepStatus.SKIPPED
    assert steps["Left"].failure_reason == "not chosen: Which evaluated to false"
    assert executor.submitted == ["Right"]


def test_a_fail_step_fails_the_execution_with_its_message(project):
    gate = FailStep(name="Gate", error_message="quality too low")
    after = job("After", gate)
    execution = project.run(Pipeline(name="p", steps=[gate, after]), ScriptedExecutor({}))
    record = project.store.get_execution(execution)
    assert record.status == ExecutionStatus.FAILED and record.failure_reason == "quality too low"
    assert project.steps(execution)["After"].failure_reason == "execution failed before this step started"


def test_a_foreach_runs_one_body_per_item_and_fails_naming_the_failed_item(project):
    item = ForEachItem()
    body = job("Body", arguments=["--kind", item])
    loop = ForEach(name="Loop", items=["a", "b", "c"], steps=[body], max_concurrency=1)
    after = job("After", loop)
    executor = ScriptedExecutor({"Loop-b-Body": [FAILED]})
    execution = project.run(Pipeline(name="p", steps=[loop, after]), executor)
    steps = project.steps(execution)
    assert executor.submitted == ["Loop-a-Body", "Loop-b-Body", "Loop-c-Body"]  # one at a time, in item order
    assert steps["Loop"].status == StepStatus.FAILED
    assert steps["Loop"].failure_reason == "item 'b': step 'Loop-b-Body' failed"
    assert steps["Loop"].properties["items"] == ["a", "b", "c"]
    assert steps["After"].status == StepStatus.SKIPPED


def test_a_stop_stops_the_running_job_and_skips_what_did_not_start(project):
    a, b = job("A"), job("B")
    after = job("After", a)
    holder: dict[str, str] = {}
    executor = ScriptedExecutor({"A": [None], "B": [None]},
                                on_submit=lambda step: step == "B" and project.store.request_stop(holder["id"]))
    pipeline = Pipeline(name="p", steps=[a, b, after])
    holder["id"] = execution_id = create_execution(pipeline, {}, project.store, str(project.root))
    Orchestrator(execution_id, Runtime(project.settings, project.store, project.artifacts, lambda _: executor)).run()
    steps = project.steps(execution_id)
    assert steps["A"].status == StepStatus.STOPPED and steps["B"].status == StepStatus.STOPPED
    assert steps["After"].failure_reason == "execution stopped before this step started"
    assert project.store.get_execution(execution_id).status == ExecutionStatus.STOPPED


def test_a_selective_run_runs_only_the_selected_step_and_reuses_the_rest(project):
    a = job("A")
    b = job("B", a)
    c = job("C", b)
    pipeline = Pipeline(name="p", steps=[a, b, c])
    first = project.run(pipeline, ScriptedExecutor({}))
    executor = ScriptedExecutor({})
    second = project.run(pipeline, executor, selective=SelectiveExecutionConfig(first, ["B"]))
    steps = project.steps(second)
    assert executor.submitted == ["B"]
    assert steps["A"].cache_source == first and steps["C"].status == StepStatus.SKIPPED
    assert project.store.get_execution(second).status == ExecutionStatus.SUCCEEDED


@pytest.mark.parametrize("cap, expected_peak", [(1, 1), (2, 2), (None, 3)])
def test_a_foreach_never_runs_more_items_at_once_than_its_cap(project, cap, expected_peak):
    item = ForEachItem()
    loop = ForEach(name="Loop", items=["a", "b", "c"], steps=[job("Body", arguments=["--kind", item])],
                   max_concurrency=cap)
    peak = []
    executor = ScriptedExecutor({f"Loop-{k}-Body": [None] for k in "abc"})

    def on_submit(step: str) -> None:  # every job runs until the orchestrator has started all it may
        running = [ref for ref, result in executor.ended.items() if result is None]
        peak.append(len(running))

    executor.on_submit = on_submit
    original = executor.wait_any

    def end_one(refs, timeout=None):  # the oldest running job ends each time the orchestrator waits
        running = [ref for ref in refs if executor.ended[ref] is None]
        if running:
            executor.ended[running[0]] = OK
        return original(refs, timeout)

    executor.wait_any = end_one
    pipeline = Pipeline(name="p", steps=[loop], parallelism_config=ParallelismConfiguration(max_parallel_steps=8))
    execution = project.run(pipeline, executor)
    assert project.store.get_execution(execution).status == ExecutionStatus.SUCCEEDED
    assert max(peak) == expected_peak


def test_max_parallel_steps_one_runs_independent_jobs_one_after_the_other(project):
    executor = ScriptedExecutor({name: [None] for name in ("A", "B", "C")})
    peak = []
    executor.on_submit = lambda step: peak.append(sum(r is None for r in executor.ended.values()))
    original = executor.wait_any

    def end_one(refs, timeout=None):
        running = [ref for ref in refs if executor.ended[ref] is None]
        if running:
            executor.ended[running[0]] = OK
        return original(refs, timeout)

    executor.wait_any = end_one
    pipeline = Pipeline(name="p", steps=[job("A"), job("B"), job("C")],
                        parallelism_config=ParallelismConfiguration(max_parallel_steps=1))
    execution = project.run(pipeline, executor)
    assert project.store.get_execution(execution).status == ExecutionStatus.SUCCEEDED
    assert peak == [1, 1, 1] and executor.submitted == ["A", "B", "C"]


class WarmingExecutor(ScriptedExecutor):
    """A scripted executor that counts what it is asked to start ahead of the first job: @step workers, supervisors."""

    def __init__(self) -> None:
        super().__init__({})
        self.prestarted = {"worker": 0, "supervisors": 0}

    def prestart_worker(self) -> None:
        self.prestarted["worker"] += 1

    def prestart_supervisors(self) -> None:
        self.prestarted["supervisors"] += 1


def add_one(x: int) -> int:
    return x + 1


@pytest.mark.parametrize(("cached", "cache_lookups", "steps", "worker", "supervisors"), [
    (False, True, "function", 1, 0),  # a @step without caching will surely run: its worker starts at once
    (True, True, "function", 0, 0),  # every @step may be a cache hit: no worker is started before one is needed
    (True, False, "function", 1, 0),  # --no-cache: the cached @step runs after all
    (False, True, "script", 0, 1),  # a script step: the supervisor launcher starts at once, no @step worker
    (True, True, "script", 0, 0),  # the script step may be a cache hit
    (False, True, "both", 1, 1),
])
def test_what_a_job_runs_in_is_started_with_the_orchestrator_only_when_such_a_job_will_surely_run(
        project, cached, cache_lookups, steps, worker, supervisors):
    config = CacheConfig(enable_caching=True, expire_after="P1D") if cached else None
    made = []
    if steps in ("script", "both"):
        made.append(job("Prep", cache_config=config))
    if steps in ("function", "both"):
        made.append(step(name="AddOne", cache_config=config)(add_one)(1))
    execution_id = create_execution(Pipeline(name="warm", steps=made), {}, project.store, str(project.root))
    executor = WarmingExecutor()
    runtime = Runtime(project.settings, project.store, project.artifacts, lambda _: executor)
    Orchestrator(execution_id, runtime, cache_lookups=cache_lookups)
    assert executor.prestarted == {"worker": worker, "supervisors": supervisors}

