"""A step's logs and metrics: where they live (its own execution, or a cache hit's source) and which attempt."""

from __future__ import annotations

from forgeline.errors import NotFoundError
from forgeline.jobs.metrics import metric_series_path, read_metric_series
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import MetricPoint, StepAttempt, StepEvent, StepEventKind, StepRun, StepStatus

MAX_HOPS = 50
"""A cache hit may come from an execution whose step was itself reused; follow at most this many."""


def ran_in(store: MetadataStore, run: StepRun) -> StepRun:
    """The run that actually executed this step: the step itself, or the source of its cache hit."""
    seen = {run.execution_id}
    for _ in range(MAX_HOPS):
        if not (run.cache_hit and run.cache_source) or run.cache_source in seen:
            return run
        seen.add(run.cache_source)
        run = store.get_step_run(store.get_execution(run.cache_source).id, run.name)
    return run


def step_metric_points(store: MetadataStore, execution_id: str, run: StepRun) -> list[MetricPoint]:
    """A step's points: those stored when its attempts ended, plus, while it runs, those its log has so far."""
    points = store.list_metric_points(execution_id, run.name)
    if run.status.is_terminal:
        return points
    attempts = [a for a in store.list_attempts(execution_id, run.name) if a.log_path and a.ended_at is None]
    for attempt in attempts[-1:]:
        points.extend(
            MetricPoint(execution_id=execution_id, step_name=run.name, attempt=s.attempt, name=s.name,
                        value=s.value, timestamp=s.timestamp, seq=s.seq)
            for s in read_metric_series(metric_series_path(attempt.log_path or ""))
        )
    return points


def logged_attempts(store: MetadataStore, run: StepRun, attempt: int | None) -> list[StepAttempt]:
    """The step's attempts that have a log (only the one asked for, when asked)."""
    found = [a for a in store.list_attempts(run.execution_id, run.name) if a.log_path]
    return [a for a in found if a.attempt == attempt] if attempt is not None else found


def chosen_attempt(store: MetadataStore, run: StepRun, attempt: int | None) -> StepAttempt:
    """The attempt whose log to show: the one asked for, or the latest; NotFoundError saying why there is none."""
    found = logged_attempts(store, run, attempt)
    if found:
        return found[-1]
    which = f"no attempt {attempt} with a log" if attempt is not None else "no logs"
    reason = f", {run.failure_reason}" if run.failure_reason else ""
    raise NotFoundError(f"step {run.name!r} of execution {run.execution_id} has {which} "
                        f"(status {run.status.value}{reason})")


def step_ended(event: StepEvent, ended: bool) -> bool:
    """Whether the step has ended, after ``event`` (a step status event decides; others leave ``ended``)."""
    if event.kind != StepEventKind.STEP or event.status is None:
        return ended
    return StepStatus(event.status).is_terminal
