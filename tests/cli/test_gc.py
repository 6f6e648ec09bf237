"""`forgeline gc` and `forgeline executions delete` on the command line: arguments, errors and the report."""

from __future__ import annotations

import re

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
