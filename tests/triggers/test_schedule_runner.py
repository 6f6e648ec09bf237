"""ScheduleRunner under a clock the test controls: due times fire once, catch-up and overlap policies, pauses.

Executions are started Queued in a real store (no launcher runs them here); what a tick did is read back from
schedule_fires and the executions' started_by.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from conftest import wait_until
from forgeline.errors import ScheduleError, StaleLeaseError
from forgeline.store.metadata.records import ExecutionStatus
from forgeline.store.metadata.schedule_store import FireOutcome
from forgeline.store.metadata.updates import ExecutionUpdate
from forgeline.triggers.definitions import ScheduleSpec, create_schedule, set_schedule_paused
from forgeline.triggers.schedule_runner import SCHEDULES_LEASE, RunnerTiming, ScheduleRunner
from forgeline.triggers.starting import QueuedStarter

from .conftest import StallingStarter, Stored

MONDAY_0559_BERLIN = datetime(2026, 12, 7, 4, 59, tzinfo=UTC)  # 05:59 in Berlin (UTC+1)


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_runner(stored: Stored, clock: Clock, owner: str = "test",
                timing: RunnerTiming | None = None) -> ScheduleRunner:
    return ScheduleRunner(stored.runtime.store, QueuedStarter(stored.runtime), owner, clock=clock, timing=timing)


def test_a_weekly_berlin_schedule_fires_once_at_its_due_time_with_its_parameters(stored: Stored) -> None:
    clock = Clock(MONDAY_0559_BERLIN)
    store = stored.runtime.store
    record = create_schedule(store, ScheduleSpec("weekly", "0 6 * * MON", "Europe/Berlin", {"ModelType": "xgb"}),
                             stored.pipeline, clock())
    assert record.next_fire_at == datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
    runner = make_runner(stored, clock)

    assert runner.tick() == []  # a minute early: nothing
    clock.now += timedelta(minutes=1, seconds=2)
    fired = runner.tick()
    assert [(fire.due_at, fire.outcome.value) for fire in fired] == [(record.next_fire_at, "started")]
    assert runner.tick() == []  # the same due time never fires twice

    execution = store.get_execution(fired[0].execution_id)
    assert execution.status == ExecutionStatus.QUEUED
    assert execution.parameters["ModelType"] == "xgb"
    assert execution.started_by == {"kind": "schedule", "name": "weekly", "due_at": "2026-12-07T05:00:00+00:00"}
    after = store.get_schedule("weekly")
    assert after.last_execution_id == execution.id
    assert after.next_fire_at == datetime(2026, 12, 14, 5, 0, tzinfo=UTC)


def test_daylight_saving_time_moves_the_utc_due_time(stored: Stored) -> None:
    spring = datetime(2026, 3, 28, 12, tzinfo=UTC)
    record = create_schedule(stored.runtime.store, ScheduleSpec("daily", "0 6 * * *", "Europe/Berlin"),
                             stored.pipeline, spring)
    assert record.next_fire_at == datetime(2026, 3, 29, 4, 0, tzinfo=UTC)  # 06:00 CEST
    runner = make_runner(stored, Clock(datetime(2026, 3, 29, 4, 0, 1, tzinfo=UTC)))
    runner.tick()
    assert stored.runtime.store.get_schedule("daily").next_fire_at == datetime(2026, 3, 30, 4, 0, tzinfo=UTC)


def test_catchup_last_starts_one_execution_for_the_latest_missed_due_time(stored: Stored) -> None:
    start = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
    create_schedule(stored.runtime.store, ScheduleSpec("hourly", "0 * * * *", "UTC", catchup="last"),
                    stored.pipeline, start)
    clock = Clock(start + timedelta(hours=5))  # the server was down: 11:00 … 15:00 were missed
    fired = make_runner(stored, clock).tick()
    assert [(fire.due_at.hour, fire.outcome.value) for fire in fired] == [(15, "started")]
    fires = stored.runtime.store.list_schedule_fires("hourly")
    assert [fire.due_at.hour for fire in fires] == [15]
    assert stored.runtime.store.get_schedule("hourly").next_fire_at == datetime(2026, 12, 1, 16, tzinfo=UTC)


def test_catchup_none_skips_missed_due_times_to_the_next_future_one(stored: Stored) -> None:
    start = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
    create_schedule(stored.runtime.store, ScheduleSpec("hourly", "0 * * * *", "UTC", catchup="none"),
                    stored.pipeline, start)
    clock = Clock(start + timedelta(hours=5, minutes=10))  # down from 10:00 to 15:10: every due time missed
    runner = make_runner(stored, clock)
    assert runner.tick() == []
    assert stored.runtime.store.list_schedule_fires("hourly") == []
    assert stored.runtime.store.get_schedule("hourly").next_fire_at == datetime(2026, 12, 1, 16, tzinfo=UTC)
    clock.now = datetime(2026, 12, 1, 16, 0, 1, tzinfo=UTC)  # on time again: it fires
    assert [fire.outcome.value for fire in runner.tick()] == ["started"]


def test_overlap_skip_records_the_fire_as_skipped_while_the_previous_execution_runs(stored: Stored) -> None:
    store = stored.runtime.store
    start = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
    create_schedule(store, ScheduleSpec("minutely", "* * * * *", "UTC", overlap="skip"), stored.pipeline, start)
    clock = Clock(start + timedelta(seconds=31))
    runner = make_runner(stored, clock)
    first = runner.tick()[0]
    assert first.outcome.value == "started"
    clock.now += timedelta(minutes=1)
    second = runner.tick()[0]  # the first is still Queued: skipped, with the reason
    assert second.outcome.value == "skipped" and second.execution_id is None
    assert first.execution_id in (second.reason or "") and "still Queued" in (second.reason or "")
    store.update_execution(first.execution_id, ExecutionUpdate(status=ExecutionStatus.FAILED,
                                                               ended_at=clock.now, failure_reason="test"))
    clock.now += timedelta(minutes=1)
    assert runner.tick()[0].outcome.value == "started"  # the previous one ended: the next fire starts


def test_overlap_allow_starts_another_execution_while_the_previous_runs(stored: Stored) -> None:
    start = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
    create_schedule(stored.runtime.store, ScheduleSpec("minutely", "* * * * *", "UTC", overlap="allow"),
                    stored.pipeline, start)
    clock = Clock(start + timedelta(seconds=31))
    runner = make_runner(stored, clock)
    runner.tick()
    clock.now += timedelta(minutes=1)
    assert [fire.outcome.value for fire in runner.tick()] == ["started"]
    assert len(stored.runtime.store.list_executions("echo")) == 2


def test_a_paused_schedule_does_not_fire_and_resumes_from_the_next_due_time(stored: Stored) -> None:
    store = stored.runtime.store
    start = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
    create_schedule(store, ScheduleSpec("minutely", "* * * * *", "UTC"), stored.pipeline, start)
    set_schedule_paused(store, "minutely", True, start)
    clock = Clock(start + timedelta(minutes=3))
    runner = make_runner(stored, clock)
    assert runner.tick() == []
    resumed = set_schedule_paused(store, "minutely", False, clock())
    assert resumed.next_fire_at == datetime(2026, 12, 1, 10, 4, tzinfo=UTC)
    assert runner.tick() == []  # paused time is not caught up
    clock.now = datetime(2026, 12, 1, 10, 4, 1, tzinfo=UTC)
    assert len(runner.tick()) == 1


def test_two_runners_racing_on_one_database_fire_each_due_time_once(stored: Stored) -> None:
    """Both tick with the lease set aside: the schedule_fires primary key alone lets one of them fire."""
    start = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
    create_schedule(stored.runtime.store, ScheduleSpec("minutely", "* * * * *", "UTC", overlap="allow"),
                    stored.pipeline, start)
    clock = Clock(start + timedelta(seconds=31))
    runners = [make_runner(stored, clock, f"runner-{index}") for index in range(4)]
    barrier = threading.Barrier(len(runners))
    results: list[int] = []

    def tick(runner: ScheduleRunner) -> None:
        barrier.wait()
        results.append(len(runner.tick()))

    threads = [threading.Thread(target=tick, args=(runner,)) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == [0, 0, 0, 1]
    assert len(stored.runtime.store.list_executions("echo")) == 1


def test_a_fire_left_pending_by_a_dead_runner_is_finished_not_doubled(stored: Stored) -> None:
    store = stored.runtime.store
    start = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
    create_schedule(store, ScheduleSpec("minutely", "* * * * *", "UTC", overlap="allow"), stored.pipeline, start)
    due = datetime(2026, 12, 1, 10, 1, tzinfo=UTC)
    # A runner that claimed the due time and died before starting anything:
    assert store.claim_schedule_fire("minutely", due, due + timedelta(minutes=1))
    # One that claimed, started, and died before recording the execution:
    due2 = due + timedelta(minutes=1)
    assert store.claim_schedule_fire("minutely", due2, due2 + timedelta(minutes=1))
    started = QueuedStarter(stored.runtime).start(stored.pipeline, {}, {
        "kind": "schedule", "name": "minutely", "due_at": due2.isoformat()})
    # Fires younger than a lease may still be being started by their holder: they are left alone...
    make_runner(stored, Clock(due2 + timedelta(seconds=5))).tick()
    assert {fire.outcome.value for fire in store.list_schedule_fires("minutely")} == {"pending"}
    assert len(store.list_executions("echo")) == 1
    # ...and finished by the next holder once a lease has passed (a zero lease here: the holders are gone).
    runner = make_runner(stored, Clock(due2 + timedelta(seconds=5)), timing=RunnerTiming(lease_seconds=0.0))
    runner.tick()
    fires = {fire.due_at: fire for fire in store.list_schedule_fires("minutely")}
    assert fires[due].outcome.value == "started" and fires[due].execution_id
    assert fires[due2].outcome.value == "started" and fires[due2].execution_id == started
    assert len(store.list_executions("echo")) == 2


def test_the_runner_service_takes_the_lease_so_one_of_two_acts(stored: Stored) -> None:
    store = stored.runtime.store
    start = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
    create_schedule(store, ScheduleSpec("minutely", "* * * * *", "UTC", overlap="allow"), stored.pipeline, start)
    assert store.acquire_lease("schedules", "someone-else", 60)
    stop = threading.Event()
    clock = Clock(start + timedelta(seconds=31))
    runner = make_runner(stored, clock, "me")
    thread = threading.Thread(target=runner.run, args=(stop,))
    thread.start()
    try:
        stop.wait(1.5)  # several ticks, none may fire: the lease is another's
        assert store.list_schedule_fires("minutely") == []
        store.release_lease("schedules", "someone-else")
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while not store.list_schedule_fires("minutely") and datetime.now(UTC) < deadline:
            stop.wait(0.05)
        assert len(store.list_schedule_fires("minutely")) == 1
    finally:
        stop.set()
        thread.join(30)


@pytest.mark.parametrize(("spec", "message"), [
    (ScheduleSpec("x", "0 6 * * FOO"), "invalid cron expression '0 6 * * FOO'"),
    (ScheduleSpec("x", "0 6 * *"), "invalid cron expression '0 6 * *'"),
    (ScheduleSpec("x", "0 6 * * *", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    (ScheduleSpec("x", "0 6 * * *", catchup="all"), "--catchup 'all': expected one of none, last"),
    (ScheduleSpec("x", "0 6 * * *", overlap="queue"), "--overlap 'queue': expected one of skip, allow"),
    (ScheduleSpec("no spaces", "0 6 * * *"), "schedule name 'no spaces'"),
])
def test_bad_input_is_refused_in_one_line_and_nothing_is_stored(stored: Stored, spec: ScheduleSpec,
                                                                 message: str) -> None:
    with pytest.raises(ScheduleError, match="^" + message.replace("*", r"\*").replace("(", r"\(")):
        create_schedule(stored.runtime.store, spec, stored.pipeline, datetime.now(UTC))
    assert stored.runtime.store.list_schedules() == []


def test_a_runner_that_stalled_past_its_lease_has_its_start_refused_and_the_due_time_fires_once(
        stored: Stored) -> None:
    """Runner a claims a due time and stalls before starting its execution; its lease expires, b takes the duty
    over and finishes the fire a left pending. When a wakes up, its start is refused by the lease's epoch."""
    store = stored.runtime.store
    start = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
    create_schedule(store, ScheduleSpec("minutely", "* * * * *", "UTC", overlap="allow"), stored.pipeline, start)
    clock = Clock(start + timedelta(seconds=31))
    short = RunnerTiming(tick_seconds=0.1, lease_seconds=0.2)

    def take_over() -> None:
        epoch = wait_until(lambda: store.hold_lease(SCHEDULES_LEASE, "b", 60), timeout=120,
                           what="a's short lease expired and b holding it")
        runner = make_runner(stored, clock, "b", short)
        with store.lease_fence(SCHEDULES_LEASE, epoch):  # b finishes a's fire once it is older than a lease
            wait_until(lambda: runner.tick() is not None and not store.list_schedule_fires(
                outcome=FireOutcome.PENDING), timeout=120, what="b finishing the fire a left pending")

    stalled = ScheduleRunner(store, StallingStarter(stored.runtime, take_over), "a", clock=clock, timing=short)
    epoch = store.hold_lease(SCHEDULES_LEASE, "a", 0.2)
    assert epoch is not None
    with store.lease_fence(SCHEDULES_LEASE, epoch), pytest.raises(StaleLeaseError, match="held by b"):
        stalled.tick()
    (fire,) = store.list_schedule_fires("minutely")
    (execution,) = store.list_executions("echo")  # one, not two
    assert (fire.due_at, fire.outcome, fire.execution_id) == (
        datetime(2026, 12, 1, 10, 1, tzinfo=UTC), FireOutcome.STARTED, execution.id)
