"""The forgeline command: errors are one clear line (a traceback only with --debug); inspection commands."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

PIPELINE = """
    from forgeline.workflow import ConditionEquals, ConditionStep, FailStep, ParameterString, Pipeline, ProcessingStep

    mode = ParameterString("Mode", default_value="ok")
    hello = ProcessingStep(name="Hello", code="hello.py", arguments=[mode])
    gate = ConditionStep(name="Gate", depends_on=[hello], conditions=[ConditionEquals(left=mode, right="ok")],
                         else_steps=[FailStep(name="Refuse", error_message="mode is not ok")])
    pipeline = Pipeline(name="greeter", parameters=[mode], steps=[hello, gate])
"""


@pytest.fixture
def greeter(project):
    project.write("hello.py", "import sys\nprint('hello from', *sys.argv[1:])\nprint('to stderr', file=sys.stderr)\n")
    project.write("pipeline.py", PIPELINE)
    return project


@pytest.fixture
def finished_id(greeter, cli) -> str:
    run = cli("run", "pipeline.py", cwd=greeter.root)
    assert run.returncode == 0, run
    [record] = greeter.store().list_executions()
    return record.id


def assert_one_line_error(run, *fragments: str) -> None:
    assert run.returncode != 0, run
    assert "Traceback" not in run.output, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run
    for fragment in fragments:
        assert fragment in lines[0], (fragment, run)


def test_run_shows_the_steps_and_ends_with_the_status(greeter, cli):
    run = cli("run", "pipeline.py", cwd=greeter.root)

    assert run.returncode == 0, run
    [record] = greeter.store().list_executions()
    assert "greeter" in run.stdout and record.id in run.stdout
    for step in ("Hello", "Gate", "Refuse"):
        assert step in run.stdout
    assert re.search(rf"execution {record.id}\s+Succeeded", run.stdout), run


def test_run_prints_the_final_status_on_a_line_of_its_own(greeter, cli):
    """Logs of CI jobs (no terminal) must show where the table ends and the verdict begins."""
    run = cli("run", "pipeline.py", cwd=greeter.root)

    assert run.returncode == 0, run
    [record] = greeter.store().list_executions()
    assert re.search(rf"^execution {record.id}\s+Succeeded\s*$", run.stdout, flags=re.MULTILINE), run


def test_run_exits_non_zero_when_the_execution_fails(greeter, cli):
    run = cli("run", "pipeline.py", "-p", "Mode=broken", cwd=greeter.root)

    assert run.returncode == 1, run
    assert "Traceback" not in run.output
    assert "mode is not ok" in run.stdout, run
    [record] = greeter.store().list_executions()
    assert record.status == "Failed" and record.failure_reason == "mode is not ok"


def test_run_detach_prints_the_id_and_returns(greeter, cli, wait_for_end):
    run = cli("run", "pipeline.py", "--detach", cwd=greeter.root)

    assert run.returncode == 0, run
    [record] = greeter.store().list_executions()
    assert run.stdout.strip() == record.id

    from forgeline.engine.execution import PipelineExecution

    assert wait_for_end(PipelineExecution.get(record.id)).status == "Succeeded"


def test_logs_print_the_step_output(finished_id, greeter, cli):
    logs = cli("logs", finished_id, "Hello", cwd=greeter.root)

    assert logs.returncode == 0, logs
    assert "hello from ok" in logs.stdout and "to stderr" in logs.stdout


def test_executions_can_be_named_by_a_unique_prefix(finished_id, greeter, cli):
    described = cli("executions", "describe", finished_id[:6], cwd=greeter.root)

    assert described.returncode == 0, described
    assert finished_id in described.stdout


def test_describe_as_json(finished_id, greeter, cli):
    described = cli("executions", "describe", finished_id, "--json", cwd=greeter.root)

    assert described.returncode == 0, described
    doc = json.loads(described.stdout)
    assert doc["id"] == finished_id and doc["status"] == "Succeeded"
    assert doc["parameters"] == {"Mode": "ok"}
    assert {s["name"]: s["status"] for s in doc["steps"]} == {"Hello": "Succeeded", "Gate": "Succeeded",
                                                              "Refuse": "Skipped"}


def test_describe_shows_parameters_steps_and_the_failure_reason(greeter, cli):
    assert cli("run", "pipeline.py", "-p", "Mode=broken", cwd=greeter.root).returncode == 1
    [record] = greeter.store().list_executions()

    described = cli("executions", "describe", record.id, cwd=greeter.root)

    assert described.returncode == 0, described
    text = described.stdout
    assert "Failed" in text and "mode is not ok" in text
    assert re.search(r"Mode: 'broken'", text), text
    for step, status in [("Hello", "Succeeded"), ("Gate", "Succeeded"), ("Refuse", "Failed")]:
        assert re.search(rf"^{step}\s+\S+\s+{status}\b", text, flags=re.MULTILINE), (step, text)


def test_executions_list_newest_first_and_by_pipeline(greeter, cli):
    assert cli("run", "pipeline.py", cwd=greeter.root).returncode == 0
    assert cli("run", "pipeline.py", "-p", "Mode=no", cwd=greeter.root).returncode == 1
    newest, oldest = greeter.store().list_executions()

    listed = cli("executions", "list", cwd=greeter.root)

    assert listed.returncode == 0, listed
    assert listed.stdout.index(newest.id) < listed.stdout.index(oldest.id)
    assert "mode is not ok" in listed.stdout
    other = cli("executions", "list", "--pipeline", "other", cwd=greeter.root)
    assert newest.id not in other.stdout and oldest.id not in other.stdout


def run_in_terminal(args: list[str], cwd, columns: int) -> tuple[int, str]:
    """Run the CLI attached to a real pseudo-terminal of ``columns`` columns; return its exit code and output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen([sys.executable, "-m", "forgeline.cli.main", *args], cwd=cwd,
                               env={**env, "TERM": "xterm"}, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed: the process has exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    code = process.wait(timeout=60)
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))


def test_the_execution_list_stays_readable_on_an_80_column_terminal(finished_id, greeter, cli):
    """Ids must stay whole to be copied, and statuses whole to be read, in a standard 80-column terminal."""
    assert cli("run", "pipeline.py", "-p", "Mode=broken", cwd=greeter.root).returncode == 1

    code, output = run_in_terminal(["executions", "list"], greeter.root, columns=80)

    assert code == 0, output
    for record in greeter.store().list_executions():
        assert re.search(rf"{record.id}\b", output), output
    assert re.search(r"\bSucceeded\b", output) and re.search(r"\bFailed\b", output), output


@pytest.mark.parametrize(("args", "fragments"), [
    pytest.param(["executions", "describe", "ffffffffffff"], ["ffffffffffff"], id="describe-unknown"),
    pytest.param(["executions", "describe", "ab"], ["ab"], id="describe-short-prefix"),
    pytest.param(["executions", "stop", "ffffffffffff"], ["ffffffffffff"], id="stop-unknown"),
    pytest.param(["logs", "ffffffffffff", "Hello"], ["ffffffffffff"], id="logs-unknown-execution"),
    pytest.param(["pipelines", "show", "nothing"], ["nothing"], id="show-unknown-pipeline"),
    pytest.param(["run", "missing.py"], ["missing.py"], id="run-missing-file"),
    pytest.param(["run", "pipeline.py", "-p", "Mode"], ["Mode"], id="override-without-value"),
])
def test_errors_are_one_clear_line(greeter, cli, args, fragments):
    greeter.store().close()  # an existing (empty) store: the error is about the execution, not the store
    run = cli(*args, cwd=greeter.root)

    assert_one_line_error(run, *fragments)


def test_logs_of_an_unknown_step_name_it(finished_id, greeter, cli):
    assert_one_line_error(cli("logs", finished_id, "Helo", cwd=greeter.root), "Helo")


def test_logs_of_a_step_that_never_ran_say_so(finished_id, greeter, cli):
    assert_one_line_error(cli("logs", finished_id, "Refuse", cwd=greeter.root), "Refuse", "Skipped")


def test_debug_shows_the_traceback(greeter, cli):
    greeter.store().close()
    run = cli("--debug", "executions", "describe", "ffffffffffff", cwd=greeter.root)

    assert run.returncode != 0
    assert "Traceback" in run.stderr and "ExecutionNotFoundError" in run.stderr, run


def test_a_pipeline_file_that_raises_is_one_line_without_debug(project, cli):
    project.write("pipeline.py", "import json\njson.loads('{oops')\n")

    run = cli("run", "pipeline.py", cwd=project.root)

    assert run.returncode != 0, run
    assert "Traceback" not in run.output, run
    assert len(run.stderr.strip().splitlines()) == 1, run
    assert "JSONDecodeError" in run.stderr or "pipeline.py" in run.stderr, run


def test_usage_errors_exit_2(cli, project):
    run = cli("executions", "describe", cwd=project.root)

    assert run.returncode == 2, run
    assert "Traceback" not in run.output


def test_logs_of_an_attempt_that_does_not_exist_say_so(finished_id, greeter, cli):
    assert_one_line_error(cli("logs", finished_id, "Hello", "--attempt", "5", cwd=greeter.root),
                          "Hello", "no attempt 5", "Succeeded")
