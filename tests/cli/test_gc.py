"""`forgeline gc` and `forgeline executions delete` on the command line: arguments, errors and the report."""

from __future__ import annotations

import os
import re
import time

import pytest

PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingOutput, ProcessingStep

    write = ProcessingStep(name="Write", code="write.py", outputs=[ProcessingOutput(output_name="out", source="out")])
    pipeline = Pipeline(name="tidy", steps=[write])
"""


@pytest.fixture
def finished(project, cli) -> str:
    project.write("write.py", "from pathlib import Path\nPath('out/data.bin').write_bytes(b'x' * 4096)\n")
    project.write("pipeline.py", PIPELINE)
    run = cli("run", "pipeline.py", cwd=project.root)
    assert run.returncode == 0, run
    return project.store().list_executions()[0].id


def one_line_error(run, *fragments: str) -> None:
    assert run.returncode == 1 and "Traceback" not in run.output, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run
    for fragment in fragments:
        assert fragment in lines[0], (fragment, run)


@pytest.mark.parametrize("age", ["30", "thirty days", "3x", "-2d"])
def test_an_unreadable_age_is_one_line_naming_the_option(finished, cli, project, age):
    one_line_error(cli("gc", "--older-than", age, cwd=project.root), "--older-than", repr(age), "30m, 2h, 3d or 1w")
    assert project.store().list_executions()[0].id == finished


def test_gc_needs_an_age(finished, cli, project):
    run = cli("gc", cwd=project.root)

    assert run.returncode == 2 and "--older-than" in run.output, run


def test_deleting_an_unknown_execution_names_it(finished, cli, project):
    one_line_error(cli("executions", "delete", "ffffffffffff", cwd=project.root), "ffffffffffff")


def test_a_prefix_deletes_the_one_execution_it_names_and_the_report_counts_bytes(finished, cli, project,
                                                                                 forgeline_home):
    dry = cli("executions", "delete", finished[:6], "--dry-run", cwd=project.root)
    deleted = cli("executions", "delete", finished[:6], cwd=project.root)

    assert dry.returncode == 0 and deleted.returncode == 0, (dry, deleted)
    assert f"would remove execution {finished}" in dry.stdout, dry
    assert re.search(r"would remove artifacts \S+/executions/" + finished + r"\s+\(4\.1 kB\)", dry.stdout), dry
    assert f"removed execution {finished}" in deleted.stdout, deleted
    assert re.search(r"^freed 4\.\d kB: 1 execution, 2 folders", deleted.stdout, flags=re.MULTILINE), deleted
    assert project.store().list_executions() == []
    assert not (forgeline_home / "artifacts" / "executions" / finished).exists()


def test_gc_without_a_store_says_where_it_looked(cli, project):
    one_line_error(cli("gc", "--older-than", "30d", cwd=project.root), "no forgeline metadata database")


def _age_code(home, days: float) -> None:
    """Make every stored snapshot file and checkout look written ``days`` ago (their real mtimes)."""
    then = time.time() - days * 86400
    for root in (home / "artifacts" / "snapshots", home / "code"):
        for path in [root, *root.rglob("*")]:
            os.utime(path, (then, then))


def test_gc_collects_the_code_snapshot_of_a_deleted_execution_and_unused_checkouts(finished, cli, project,
                                                                              forgeline_home):
    first = project.store().get_execution(finished).code_snapshot
    project.write("write.py", "from pathlib import Path\nPath('out/data.bin').write_bytes(b'y' * 4096)\n")
    second_run = cli("run", "pipeline.py", cwd=project.root)
    assert second_run.returncode == 0, second_run
    second = next(r for r in project.store().list_executions() if r.id != finished)
    assert second.code_snapshot not in (None, first)
    checkouts = forgeline_home / "code"
    assert sorted(path.name for path in checkouts.iterdir()) == sorted([first, second.code_snapshot])
    deleted = cli("executions", "delete", finished, cwd=project.root)
    assert deleted.returncode == 0, deleted

    young = cli("gc", "--older-than", "30d", "--dry-run", cwd=project.root)
    _age_code(forgeline_home, 2)
    dry = cli("gc", "--older-than", "30d", "--dry-run", cwd=project.root)
    done = cli("gc", "--older-than", "30d", cwd=project.root)

    assert young.returncode == dry.returncode == done.returncode == 0, (young, dry, done)
    assert "code snapshot" not in young.stdout and "checkout" not in young.stdout, young
    size = len("from pathlib import Path\nPath('out/data.bin').write_bytes(b'x' * 4096)\n")
    assert re.search(rf"^would remove code snapshot \S+/snapshots/manifests/{first}\.json", dry.stdout,
                     flags=re.MULTILINE), dry
    assert re.search(rf"^would remove code blob \S+/snapshots/blobs/\S+\s+\({size} B\)$", dry.stdout,
                     flags=re.MULTILINE), dry
    for snapshot in (first, second.code_snapshot):  # both executions have ended: no checkout is in use
        assert re.search(rf"^would remove checkout \S+/code/{snapshot}\s+\({size} B\)$", dry.stdout,
                         flags=re.MULTILINE), dry
    assert re.search(r"^would free .*: 0 executions, 1 code snapshot, 3 folders", dry.stdout, flags=re.MULTILINE), dry
    assert done.stdout.replace("removed", "would remove").replace("freed", "would free").splitlines() \
        == dry.stdout.splitlines()[:-1] + [dry.stdout.splitlines()[-1].removesuffix(" (dry run: nothing was removed)")]
    assert list(checkouts.iterdir()) == []
    manifests = forgeline_home / "artifacts" / "snapshots" / "manifests"
    assert sorted(path.name for path in manifests.iterdir()) == [f"{second.code_snapshot}.json"]
    described = cli("executions", "describe", second.id, cwd=project.root)
    assert f"snapshot {second.code_snapshot[:12]} (1 files, {size} B)" in described.stdout, described
