"""WarmWorkerPool reuses warm workers, and replaces the ones that died or were stopped."""

from __future__ import annotations

import os
import time
from pathlib import Path

from forgeline.executors.worker_pool import WarmWorkerPool
from forgeline.jobs.control import JobControl
from forgeline.jobs.function import run_function_job
from forgeline.jobs.spec import FailureKind, JobStatus


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_an_idle_worker_is_reused(tmp_path, steps, artifacts, specs):
    pool = WarmWorkerPool(1)
    try:
        first = run_function_job(specs.function(steps, "pid"), artifacts, pool, JobControl())
        second = run_function_job(specs.function(steps, "pid"), artifacts, pool, JobControl())
    finally:
        pool.shutdown()
    assert first.status is JobStatus.SUCCEEDED, first.failure_reason
    assert first.properties["Return"] == second.properties["Return"]


def test_a_dead_worker_is_replaced(tmp_path, steps, artifacts, specs):
    pool = WarmWorkerPool(1)
    try:
        before = run_function_job(specs.function(steps, "pid"), artifacts, pool, JobControl())
        died = run_function_job(specs.function(steps, "die"), artifacts, pool, JobControl())
        after = run_function_job(specs.function(steps, "pid"), artifacts, pool, JobControl())
    finally:
        pool.shutdown()
    assert died.failure_kind is FailureKind.INTERRUPTED
    assert after.status is JobStatus.SUCCEEDED
    assert after.properties["Return"] != before.properties["Return"]


def test_a_worker_killed_while_idle_is_replaced(tmp_path, steps, artifacts, specs):
    pool = WarmWorkerPool(1)
    try:
        before = run_function_job(specs.function(steps, "pid"), artifacts, pool, JobControl())
        os.kill(before.properties["Return"], 9)
        time.sleep(0.05)
        after = run_function_job(specs.function(steps, "pid"), artifacts, pool, JobControl())
    finally:
        pool.shutdown()
    assert after.status is JobStatus.SUCCEEDED, after.failure_reason
    assert after.properties["Return"] != before.properties["Return"]


def test_shutdown_ends_the_workers(tmp_path, steps, artifacts, specs):
    pool = WarmWorkerPool(2)
    result = run_function_job(specs.function(steps, "pid"), artifacts, pool, JobControl())
    pool.shutdown()
    assert not alive(result.properties["Return"])
    assert not Path(f"/proc/{result.properties['Return']}").exists()


def test_a_prestarted_worker_runs_the_first_call_and_only_one_is_prestarted(tmp_path, steps, artifacts, specs):
    pool = WarmWorkerPool(2)
    try:
        pool.prestart()
        pool.prestart()  # one is already there: nothing more starts
        assert len(pool._idle) == 1
        prestarted = pool._idle[0].pid
        first = run_function_job(specs.function(steps, "pid"), artifacts, pool, JobControl())
    finally:
        pool.shutdown()
    assert first.status is JobStatus.SUCCEEDED, first.failure_reason
    assert first.properties["Return"] == prestarted

