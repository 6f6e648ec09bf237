"""Housekeeping as a user meets it: `executions delete`, `gc --older-than` (and its dry run), job folders that go
after a succeeded step unless kept, and the leftovers of a registration whose orchestrator was killed.

The project's pipeline caches its first step and registers a model, so deleting shows what must survive: an
output a later execution reused from the cache and the model data of a registered package.
"""

from __future__ import annotations

import os
import re
import signal
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from forgeline.engine.liveness import process_alive
from forgeline.jobs.code_folder import format_size
from forgeline.registry import Registry
from forgeline.store.metadata.updates import ExecutionUpdate

PIPELINE = """
    from forgeline.workflow import (CacheConfig, Model, Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep,
                                    RegisterModel)

    prepare = ProcessingStep(name="Prepare", code="prepare.py", cache_config=CacheConfig(enable_caching=True),
                             outputs=[ProcessingOutput(output_name="data", source="data")])
    train = ProcessingStep(name="Train", code="train.py",
                           inputs=[ProcessingInput(source=prepare.properties.outputs["data"], destination="data")],
                           outputs=[ProcessingOutput(output_name="model", source="model"),
                                    ProcessingOutput(output_name="report", source="report")])
    register = RegisterModel(
        name="Register",
        model=Model(model_data=train.properties.outputs["model"], entry_point="inference.py", source_dir="code"),
        model_package_group_name="kept", approval_status="Approved",
        content_types=["application/json"], response_types=["application/json"],
    )
    pipeline = Pipeline(name="housekeeping", steps=[prepare, train, register])
"""

PREPARE = """
    from pathlib import Path
    Path("data/rows.csv").write_text("1,2\\n" * 5000)
"""

TRAIN = """
    from pathlib import Path
    rows = Path("data/rows.csv").read_text()
    Path("model/model.txt").write_text(str(len(rows)))
    Path("report/report.txt").write_text("x" * 20000)
"""

WAITING = """
    from forgeline.workflow import Pipeline, ProcessingStep

    pipeline = Pipeline(name="waiting", steps=[ProcessingStep(name="Wait", code="wait.py")])
"""

WAIT = """
    import time
    from pathlib import Path
    import os
    Path({started!r}).write_text(str(os.getpid()))
    while not Path({release!r}).exists():
        time.sleep(0.05)
"""


@pytest.fixture
def housekeeping(project):
    project.write("prepare.py", PREPARE)
    project.write("train.py", TRAIN)
    project.write("code/inference.py", "# the default handlers serve this model\n")
    project.write("pipeline.py", PIPELINE)
    return project


def run_once(project, cli, *args: str) -> str:
    run = cli("run", "pipeline.py", *args, cwd=project.root)
    assert run.returncode == 0, run
    return project.store().list_executions()[0].id


def artifacts_of(home: Path, execution_id: str) -> Path:
    return home / "artifacts" / "executions" / execution_id


def size_of(*paths: Path) -> int:
    return sum(f.stat().st_size for path in paths if path.exists() for f in path.rglob("*") if f.is_file())


def test_delete_removes_an_execution_but_keeps_what_others_still_use(housekeeping, cli, forgeline_home):
    first = run_once(housekeeping, cli)
    second = run_once(housekeeping, cli)
    store = housekeeping.store()
    assert store.get_step_run(second, "Prepare").cache_source == first  # the second reused the first's data
    first_artifacts = artifacts_of(forgeline_home, first)
    freed = size_of(first_artifacts / "Train" / "report", forgeline_home / "logs" / first)

    deleted = cli("executions", "delete", first, cwd=housekeeping.root)

    assert deleted.returncode == 0, deleted
    assert first not in {r.id for r in store.list_executions()}
    assert not (forgeline_home / "logs" / first).exists() and not (forgeline_home / "jobs" / first).exists()
    assert not (first_artifacts / "Train" / "report").exists()
    assert (first_artifacts / "Prepare" / "data" / "rows.csv").is_file()  # execution 2 and the cache use it
    assert (first_artifacts / "Train" / "model" / "model.txt").is_file()  # model package kept/1 uses it
    assert re.search(rf"kept \S+/{first}/Prepare/data: used by .*step Prepare of execution {second}", deleted.stdout)
    assert re.search(rf"kept \S+/{first}/Train/model: used by model package kept/1", deleted.stdout), deleted
    assert f"freed {format_size(freed)}" in deleted.stdout, deleted
    package = Registry().describe("kept", 1).package
    assert Path(package.model_data).is_dir() and Path(package.code_uri or "").is_dir()
    third = run_once(housekeeping, cli)  # the cache entry still serves new executions
    assert store.get_step_run(third, "Prepare").cache_source == first


def test_gc_collects_old_executions_and_what_only_they_used(housekeeping, cli, forgeline_home):
    old = run_once(housekeeping, cli, "--no-cache")
    recent = run_once(housekeeping, cli, "--no-cache")
    store = housekeeping.store()
    store.update_execution(old, ExecutionUpdate(ended_at=datetime.now(UTC) - timedelta(days=40)))
    old_artifacts = artifacts_of(forgeline_home, old)
    expected = size_of(old_artifacts / "Prepare", old_artifacts / "Train" / "report", forgeline_home / "logs" / old)

    dry = cli("gc", "--older-than", "30d", "--dry-run", cwd=housekeeping.root)

    assert dry.returncode == 0, dry
    assert f"would remove execution {old}" in dry.stdout and recent not in dry.stdout, dry
    assert f"would remove artifacts {old_artifacts / 'Prepare'}" in dry.stdout, dry
    assert f"would free {format_size(expected)}" in dry.stdout and "dry run: nothing was removed" in dry.stdout
    assert {r.id for r in store.list_executions()} == {old, recent}
    assert (old_artifacts / "Prepare").is_dir() and (forgeline_home / "logs" / old).is_dir()

    collected = cli("gc", "--older-than", "30d", cwd=housekeeping.root)

    assert collected.returncode == 0, collected
    assert f"freed {format_size(expected)}" in collected.stdout, collected
    assert {r.id for r in store.list_executions()} == {recent}
    assert not (old_artifacts / "Prepare").exists() and not (forgeline_home / "logs" / old).exists()
    assert (old_artifacts / "Train" / "model" / "model.txt").is_file()  # model package kept/1 uses it
    assert artifacts_of(forgeline_home, recent).is_dir() and (forgeline_home / "logs" / recent).is_dir()
    again = cli("gc", "--older-than", "30d", "--dry-run", cwd=housekeeping.root)
    assert "would free 0 B: 0 executions" in again.stdout, again


def test_a_cache_entry_goes_once_no_kept_execution_uses_it(housekeeping, cli, forgeline_home):
    first = run_once(housekeeping, cli)
    second = run_once(housekeeping, cli)

    assert cli("executions", "delete", first, cwd=housekeeping.root).returncode == 0
    assert (artifacts_of(forgeline_home, first) / "Prepare" / "data").is_dir()  # the second still uses it
    assert cli("executions", "delete", second, cwd=housekeeping.root).returncode == 0
    collected = cli("gc", "--older-than", "30d", cwd=housekeeping.root)

    assert collected.returncode == 0, collected
    assert "removed cache entry" in collected.stdout and f"of execution {first}" in collected.stdout, collected
    assert not (artifacts_of(forgeline_home, first) / "Prepare").exists()
    assert (artifacts_of(forgeline_home, first) / "Train" / "model").is_dir()  # still a registered model's data
    third = run_once(housekeeping, cli)
    assert not housekeeping.store().get_step_run(third, "Prepare").cache_hit


def test_a_running_execution_is_not_deleted(project, cli, forgeline_home, wait_until):
    started, release = project.root / "started", project.root / "release"
    project.write("wait.py", WAIT.format(started=str(started), release=str(release)))
    project.write("pipeline.py", WAITING)
    detached = cli("run", "pipeline.py", "--detach", cwd=project.root)
    assert detached.returncode == 0, detached
    [record] = project.store().list_executions()
    wait_until(started.exists, timeout=60, what="the step to start")

    refused = cli("executions", "delete", record.id, cwd=project.root)
    gc = cli("gc", "--older-than", "0s", cwd=project.root)

    assert refused.returncode == 1 and "Traceback" not in refused.output, refused
    assert f"execution {record.id} is running (Executing); stop it first" in refused.stderr, refused
    assert gc.returncode == 0 and record.id not in gc.stdout, gc
    assert (forgeline_home / "jobs" / record.id).is_dir() and (forgeline_home / "logs" / record.id).is_dir()
    release.write_text("")
    wait_until(lambda: project.store().get_execution(record.id).status.is_terminal, timeout=60,
               what="the execution to end")
    assert cli("executions", "delete", record.id, cwd=project.root).returncode == 0
    assert project.store().list_executions() == []


def test_an_execution_whose_orchestrator_was_killed_can_be_deleted(project, cli, forgeline_home, wait_until):
    started, release = project.root / "started", project.root / "release"
    project.write("wait.py", WAIT.format(started=str(started), release=str(release)))
    project.write("pipeline.py", WAITING)
    assert cli("run", "pipeline.py", "--detach", cwd=project.root).returncode == 0
    [record] = project.store().list_executions()
    job = int(wait_until(lambda: started.exists() and started.read_text(), timeout=60, what="the step to start"))
    orchestrator = wait_until(lambda: project.store().get_execution(record.id).orchestrator_pid, timeout=30,
                              what="the orchestrator's pid")
    try:
        os.kill(orchestrator, signal.SIGKILL)
        wait_until(lambda: not process_alive(orchestrator), timeout=30, what="the orchestrator to die")
        assert process_alive(job)  # an orphan now: deleting must end it

        deleted = cli("executions", "delete", record.id, cwd=project.root)

        assert deleted.returncode == 0, deleted
        assert f"removed execution {record.id}" in deleted.stdout, deleted
        wait_until(lambda: not process_alive(job), timeout=30, what="the orphaned job to be ended")
        assert project.store().list_executions() == []
        assert not (forgeline_home / "jobs" / record.id).exists() and not (forgeline_home / "logs" / record.id).exists()
    finally:
        release.write_text("")


def test_job_folders_go_after_a_succeeded_step_unless_kept(housekeeping, cli, forgeline_home, monkeypatch):
    dropped = run_once(housekeeping, cli)
    kept = run_once(housekeeping, cli, "--keep-jobs")
    by_setting = cli("run", "pipeline.py", cwd=housekeeping.root, env={"FORGELINE_KEEP_JOBS": "1"})
    assert by_setting.returncode == 0, by_setting
    from_python = housekeeping.load().start(keep_jobs=True)
    from_python.wait(timeout=90)

    assert not (forgeline_home / "jobs" / dropped).exists()
    assert (forgeline_home / "jobs" / kept / "Train" / "1").is_dir()
    assert (forgeline_home / "jobs" / housekeeping.store().list_executions()[1].id / "Train" / "1").is_dir()
    assert (forgeline_home / "jobs" / from_python.id / "Train" / "1").is_dir()


def test_a_failed_steps_job_folder_stays_for_a_look(housekeeping, cli, forgeline_home):
    housekeeping.write("train.py", "raise SystemExit('broken')\n")

    run = cli("run", "pipeline.py", cwd=housekeeping.root)

    assert run.returncode == 1, run
    [record] = housekeeping.store().list_executions()
    assert (forgeline_home / "jobs" / record.id / "Train" / "1").is_dir()
    assert not (forgeline_home / "jobs" / record.id / "Prepare").exists()


# -- a registration killed halfway: the orchestrator dies (SIGKILL) while publishing the model's code ---------

CRASH_HOOK = """
    import os, signal
    from pathlib import Path

    import forgeline.store.artifacts as artifacts
    import forgeline.store.local_files as local_files

    MARKER = Path(os.environ["CRASH_MARKER"])
    WHEN = os.environ["CRASH_WHEN"]
    real_put, real_replace = artifacts.ArtifactStore.put, local_files.replace

    def crash_once():
        if not MARKER.exists():
            MARKER.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)

    def put(self, local_path, uri):
        result = real_put(self, local_path, uri)
        if "/model-packages/" in uri and WHEN == "after publishing":
            crash_once()
        return result

    def replace(staging, destination):
        if "/model-packages/" in destination and WHEN == "while publishing":
            crash_once()
        return real_replace(staging, destination)

    artifacts.ArtifactStore.put = put
    local_files.replace = replace
"""


@pytest.mark.parametrize("when", ["while publishing", "after publishing"])
def test_gc_removes_the_code_a_killed_registration_left(housekeeping, cli, forgeline_home, tmp_path, wait_until,
                                                       when):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(textwrap.dedent(CRASH_HOOK))
    marker = tmp_path / "crashed"
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(hooks), os.environ.get("PYTHONPATH")])),
           "CRASH_MARKER": str(marker), "CRASH_WHEN": when}
    started = cli("run", "pipeline.py", "--detach", cwd=housekeeping.root, env=env)
    assert started.returncode == 0, started
    [record] = housekeeping.store().list_executions()
    wait_until(marker.exists, timeout=90, what="the orchestrator to reach the registration")
    wait_until(lambda: not process_alive(int(marker.read_text() or 0)), timeout=30, what="the orchestrator to die")
    packages = forgeline_home / "artifacts" / "model-packages" / "kept"
    [leftover] = list(packages.iterdir())
    assert leftover.name.startswith(f"{record.id}-")

    resumed = cli("executions", "resume", record.id, cwd=housekeeping.root, env=env)
    assert resumed.returncode == 0, resumed
    [package] = Registry().list("kept")
    assert Path(package.code_uri or "").parent != leftover
    collected = cli("gc", "--older-than", "30d", cwd=housekeeping.root)

    assert collected.returncode == 0, collected
    assert f"removed leftover {leftover}" in collected.stdout, collected
    assert [p.name for p in packages.iterdir()] == [Path(package.code_uri or "").parent.name]
    assert (Path(package.code_uri or "") / "inference.py").is_file()
    assert {r.id for r in housekeeping.store().list_executions()} == {record.id}  # only leftovers went
