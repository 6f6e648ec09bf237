"""The scheduler alone: conditions, ForEach, retries, failure propagation, stop and selective runs, no process."""

from __future__ import annotations

import pytest

from forgeline.engine.foreach import LoopState, expand
from forgeline.engine.scheduler import EndLoop, Retry, Scheduler, Settle, Skip, Start, StepKind
from forgeline.engine.state import kind_of
from forgeline.store.metadata.records import ExecutionStatus, StepStatus
from forgeline.workflow import ConditionStep, FailStep, ForEach, ForEachItem, ProcessingStep, RetryPolicy
from forgeline.workflow.conditions import ConditionEquals
from forgeline.workflow.graph import StepGraph
from forgeline.workflow.steps import Step

S, F, X, P = StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.EXECUTING, StepStatus.PENDING


def job(name: str, *after: Step, retries: list[RetryPolicy] | None = None) -> ProcessingStep:
    return ProcessingStep(name=name, code="job.py", depends_on=list(after), retry_policies=retries)


def scheduler_for(steps: list[Step], max_parallel: int = 8) -> Scheduler:
    everything = [*steps, *(n for s in steps for n in s.nested_steps())]
    return Scheduler(StepGraph.build(everything), {s.name: kind_of(s) for s in everything}, max_parallel,
                     {s.name: getattr(s, "retry_policies", []) for s in everything})


def starts(actions: list) -> list[str]:
    return [a.step for a in actions if isinstance(a, Start)]


def test_steps_start_once_their_upstream_steps_succeeded_in_definition_order():
    a = job("A")
    b, c = job("B", a), job("C", a)
    d = job("D", b, c)
    sched = scheduler_for([a, b, c, d])
    assert starts(sched.next_actions(0)) == ["A"]
    assert sched.next_actions(0) == []  # A runs
    assert sched.job_ended("A", S, None, 1, 1, 0) == Settle(S)
    assert starts(sched.next_actions(0)) == ["B", "C"]
    sched.job_ended("B", S, None, 1, 1, 0)
    assert starts(sched.next_actions(0)) == []  # D waits for C
    sched.job_ended("C", S, None, 1, 1, 0)
    assert starts(sched.next_actions(0)) == ["D"]
    sched.job_ended("D", S, None, 1, 1, 0)
    assert sched.finished() and sched.verdict().status == ExecutionStatus.SUCCEEDED


def test_max_parallel_holds_jobs_back_until_a_slot_frees():
    steps = [job(f"J{i}") for i in range(3)]
    sched = scheduler_for(steps, max_parallel=2)
    assert starts(sched.next_actions(0)) == ["J0", "J1"]
    assert sched.running_jobs() == 2 and starts(sched.next_actions(0)) == []
    sched.job_ended("J1", S, None, 1, 1, 0)
    assert starts(sched.next_actions(0)) == ["J2"]


def test_a_failure_skips_everything_downstream_and_fails_the_execution():
    a = job("A")
    b = job("B", a)
    c = job("C", b)
    other = job("Other")
    sched = scheduler_for([a, b, c, other])
    assert starts(sched.next_actions(0)) == ["A", "Other"]
    sched.job_ended("A", F, "JobFailed", 1, 1, 0)
    actions = sched.next_actions(0)
    assert Skip("B", "upstream step 'A' failed") in actions and Skip("C", "upstream step 'B' skipped") in actions
    assert not sched.finished()  # Other still runs
    sched.job_ended("Other", S, None, 1, 1, 0)
    assert sched.next_actions(0) == [] and sched.finished()
    assert sched.verdict().status == ExecutionStatus.FAILED and sched.verdict().failed == ("A",)


def test_a_retry_waits_for_its_back_off_then_starts_again_until_the_policy_is_spent():
    a = job("A", retries=[RetryPolicy(on=["JobFailed"], max_attempts=3, interval_seconds=2, backoff_rate=3)])
    sched = scheduler_for([a])
    sched.next_actions(0)
    assert sched.job_ended("A", F, "JobFailed", 1, 1, now=10) == Retry(2)
    assert sched.status["A"] == P and not sched.finished()
    assert sched.wait_timeout(10, 5) == 2
    assert starts(sched.next_actions(11.9)) == []  # not due yet
    assert starts(sched.next_actions(12)) == ["A"]
    assert sched.job_ended("A", F, "JobFailed", 2, 2, now=20) == Retry(6)  # backs off by the rate
    assert starts(sched.next_actions(26)) == ["A"]
    assert sched.job_ended("A", F, "JobFailed", 3, 3, now=30) == Settle(F)  # third attempt was the last
    assert sched.finished() and sched.verdict().status == ExecutionStatus.FAILED


def test_a_retry_s_delay_counts_from_when_the_failure_was_recorded_not_from_when_it_came_in():
    a = job("A", retries=[RetryPolicy(on=["JobFailed"], max_attempts=3, interval_seconds=2)])
    sched = scheduler_for([a])
    sched.next_actions(0)
    assert sched.job_ended("A", F, "JobFailed", 1, 1, now=10) == Retry(2)
    sched.count_delay_from("A", 2, now=10.5)  # recording the failed attempt took half a second
    assert starts(sched.next_actions(12.4)) == []
    assert starts(sched.next_actions(12.5)) == ["A"]


def test_a_failure_kind_no_policy_names_settles_at_once():
    a = job("A", retries=[RetryPolicy(on=["Timeout"], max_attempts=5)])
    sched = scheduler_for([a])
    sched.next_actions(0)
    assert sched.job_ended("A", F, "JobFailed", 1, 1, 0) == Settle(F)


def test_a_stop_stops_running_jobs_starts_nothing_and_retries_nothing():
    a = job("A", retries=[RetryPolicy(on=["JobFailed"], max_attempts=5)])
    b, after = job("B"), job("After", a)
    sched = scheduler_for([a, b, after])
    assert starts(sched.next_actions(0)) == ["A", "B"]
    assert sched.request_stop() == ["A", "B"]
    assert sched.status["A"] == StepStatus.STOPPING and sched.next_actions(0) == []
    assert sched.job_ended("A", F, "JobFailed", 1, 1, 0) == Settle(F)  # no retry while stopping
    sched.job_ended("B", StepStatus.STOPPED, None, 1, 1, 0)
    assert sched.finished()
    assert sched.final_actions() == [Skip("After", "execution stopped before this step started")]
    assert sched.verdict().status == ExecutionStatus.STOPPED


def test_a_stop_during_a_back_off_ends_the_loop_and_skips_the_waiting_step():
    a = job("A", retries=[RetryPolicy(on=["JobFailed"], max_attempts=5, interval_seconds=60)])
    sched = scheduler_for([a])
    sched.next_actions(0)
    sched.job_ended("A", F, "JobFailed", 1, 1, 0)
    assert not sched.finished()
    assert sched.request_stop() == []
    assert sched.finished() and sched.final_actions() == [Skip("A", "execution stopped before this step started")]


def test_a_condition_starts_alone_and_its_other_branch_is_skipped():
    yes, no = job("Yes"), job("No")
    cond = ConditionStep(name="Check", conditions=[ConditionEquals(1, 1)], if_steps=[yes], else_steps=[no])
    sched = scheduler_for([cond])
    assert sched.kinds["Check"] == StepKind.CONDITION
    assert starts(sched.next_actions(0)) == ["Check"]  # its branches wait for it
    sched.mark("Check", S)
    skips = sched.not_chosen("Check", True, {True: ["Yes"], False: ["No"]})
    assert skips == [Skip("No", "not chosen: Check evaluated to true")]
    assert starts(sched.next_actions(0)) == ["Yes"]


def test_a_fail_step_stops_further_starts_and_fails_the_execution():
    gate = FailStep(name="Gate", error_message="no")
    later, parallel = job("Later", gate), job("Parallel")
    sched = scheduler_for([gate, parallel, later])
    assert starts(sched.next_actions(0)) == ["Gate"]  # nothing after a FailStep starts in its round
    sched.fail("no")
    sched.mark("Gate", F)
    assert sched.next_actions(0) == [] and sched.finished()
    assert [a.step for a in sched.final_actions()] == ["Parallel", "Later"]
    assert sched.verdict().status == ExecutionStatus.FAILED


def loop_scheduler(max_concurrency: int | None, items: list[str]) -> tuple[Scheduler, ForEach]:
    item = ForEachItem()
    body = ProcessingStep(name="Body", code="job.py", arguments=[item])
    loop = ForEach(name="Loop", items=items, steps=[body], max_concurrency=max_concurrency)
    after = job("After", loop)
    sched = scheduler_for([loop, after])
    assert starts(sched.next_actions(0)) == ["Loop"]
    state = LoopState(loop, expand(loop, items))
    new = [s for it in state.iterations for s in it.steps]
    everything = [loop, after, *new]
    sched.add_steps(StepGraph.build(everything), {s.name: kind_of(s) for s in new}, {})
    sched.add_loop(state)
    return sched, loop


def test_a_foreach_holds_its_iterations_to_its_cap_and_ends_when_all_ended():
    sched, _ = loop_scheduler(2, ["a", "b", "c"])
    assert starts(sched.next_actions(0)) == ["Loop-a-Body", "Loop-b-Body"]
    sched.job_ended("Loop-a-Body", S, None, 1, 1, 0)
    assert starts(sched.next_actions(0)) == ["Loop-c-Body"]
    sched.job_ended("Loop-b-Body", S, None, 1, 1, 0)
    sched.job_ended("Loop-c-Body", S, None, 1, 1, 0)
    actions = sched.next_actions(0)
    assert actions[0] == EndLoop("Loop", ()) and starts(actions) == ["After"]  # the loop ends before After starts


def test_a_failed_iteration_fails_the_loop_naming_the_item_and_skips_what_follows():
    sched, _ = loop_scheduler(None, ["a", "b"])
    assert starts(sched.next_actions(0)) == ["Loop-a-Body", "Loop-b-Body"]
    sched.job_ended("Loop-a-Body", F, "JobFailed", 1, 1, 0)
    sched.job_ended("Loop-b-Body", S, None, 1, 1, 0)
    actions = sched.next_actions(0)
    assert actions == [EndLoop("Loop", ("item 'a': step 'Loop-a-Body' failed",)),
                       Skip("After", "upstream step 'Loop' failed")]


def test_a_loop_still_running_at_a_stop_ends_stopped():
    sched, _ = loop_scheduler(1, ["a", "b"])
    sched.next_actions(0)
    sched.request_stop()
    sched.job_ended("Loop-a-Body", StepStatus.STOPPED, None, 1, 1, 0)
    final = sched.final_actions()
    assert EndLoop("Loop", ("the execution ended before every item finished",)) in final
    assert sched.status["Loop"] == StepStatus.STOPPED and sched.status["Loop-b-Body"] == StepStatus.SKIPPED


def test_a_selective_run_starts_only_the_selected_steps():
    a = job("A")
    b = job("B", a)
    c = job("C", b)
    sched = scheduler_for([a, b, c])
    sched.mark("A", S)  # reused from the source execution
    sched.mark("C", StepStatus.SKIPPED)  # not selected
    assert starts(sched.next_actions(0)) == ["B"]
    sched.job_ended("B", S, None, 1, 1, 0)
    assert sched.next_actions(0) == [] and sched.finished()
    assert sched.verdict().status == ExecutionStatus.SUCCEEDED


@pytest.mark.parametrize("status", [StepStatus.FAILED])
def test_a_resumed_execution_keeps_what_ended(status):
    a, b = job("A"), job("B")
    sched = scheduler_for([a, b])
    sched.mark("A", status)
    assert starts(sched.next_actions(0)) == ["B"]
    sched.job_ended("B", S, None, 1, 1, 0)
    assert sched.finished() and sched.verdict().status == (
        ExecutionStatus.FAILED if status == F else ExecutionStatus.SUCCEEDED)
