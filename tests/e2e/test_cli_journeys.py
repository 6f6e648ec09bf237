"""What a user does at the terminal: follow a step that has not started, read a cache hit's logs and metrics,
press Ctrl-C or close the terminal while watching, read durations of retried steps, filter executions, run
without the cache, and get one clear line for their own mistakes.

Every command is the real CLI in a subprocess (or on a real pseudo-terminal); steps are held back by gate
files the test creates, never by sleeping.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from forgeline.cli.render import attempts_seconds, seconds_text
from forgeline.workflow.parameters import ParameterBoolean

GATE = """
    import sys, time
    from pathlib import Path

    name, gates = sys.argv[1], Path(sys.argv[2])
    print(f"{name} says hi", flush=True)
    deadline = time.monotonic() + 300  # never reached in a passing test: the test opens the gate
    while not (gates / f"release-{name}").exists():
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.02)
    print(f"{name} done", flush=True)
"""

GATED = """
    from forgeline.workflow import Pipeline, ProcessingStep

    first = ProcessingStep(name="First", code="gate.py", arguments=["first", {gates!r}])
    second = ProcessingStep(name="Second", code="gate.py", arguments=["second", {gates!r}], depends_on=[first])
    pipeline = Pipeline(name="gated", steps=[first, second])
"""

TRAIN = """
    print("training on the only data there is", flush=True)
    print("accuracy 0.875", flush=True)
"""

CACHED = """
    from forgeline.workflow import CacheConfig, Pipeline, TrainingStep

    train = TrainingStep(name="Train", entry_point="train.py", source_dir="code",
                         metric_definitions=[{"Name": "accuracy", "Regex": r"accuracy ([0-9.]+)"}],
                         cache_config=CacheConfig(enable_caching=True))
    pipeline = Pipeline(name="cached", steps=[train])
"""

FLAKY = """
    import sys
    from pathlib import Path

    marker = Path(sys.argv[1])
    if not marker.exists():
        marker.write_text("failed once")
        sys.exit("first attempt fails on purpose")
    print("second attempt works")
"""

RETRIED = """
    from forgeline.workflow import Pipeline, ProcessingStep, RetryPolicy

    flaky = ProcessingStep(name="Flaky", code="flaky.py", arguments=[{marker!r}],
                           retry_policies=[RetryPolicy(on=["JobFailed"], max_attempts=2, interval_seconds=1.0)])
    pipeline = Pipeline(name="retried", steps=[flaky])
"""


@pytest.fixture
def gated(project, tmp_path):
    gates = tmp_path / "gates"
    gates.mkdir()
    project.write("gate.py", GATE)
    project.write("pipeline.py", GATED.format(gates=str(gates)))
    project.gates = gates
    return project


def step_status(project, execution_id: str, step: str) -> str:
    return project.store().get_step_run(execution_id, step).status.value


def detach(cli, project, *args: str) -> str:
    started = cli("run", "pipeline.py", "--detach", *args, cwd=project.root)
    assert started.returncode == 0, started
    return started.stdout.strip()


# -- logs --follow ---------------------------------------------------------------------------------------------


def test_logs_follow_waits_for_a_pending_step_and_follows_it_to_its_end(gated, cli, wait_until, tmp_path):
    execution_id = detach(cli, gated)
    wait_until(lambda: step_status(gated, execution_id, "First") == "Executing", timeout=60, what="First to run")
    assert step_status(gated, execution_id, "Second") == "Pending"  # held back behind First's gate

    out, err = tmp_path / "follow.out", tmp_path / "follow.err"
    follower = follow_in_background(cli, gated, execution_id, "Second", out, err)
    try:
        wait_until(lambda: "waiting for step Second" in err.read_text(), timeout=60,
                   what="the follower to say it waits")
        assert follower.poll() is None, err.read_text()  # still there, not an error about missing logs
        (gated.gates / "release-first").touch()
        wait_until(lambda: "second says hi" in out.read_text(), timeout=60, what="Second's first line")
        assert follower.poll() is None  # Second is still running: the follower keeps following
        (gated.gates / "release-second").touch()
        assert follower.wait(timeout=60) == 0, err.read_text()
    finally:
        if follower.poll() is None:
            follower.kill()
    assert out.read_text().splitlines() == ["second says hi", "second done"]
    assert "first" not in out.read_text()


# -- cache hits: logs and metrics come from the execution that ran the step; --no-cache ------------------------


HELD = """
    from forgeline.workflow import CacheConfig, Pipeline, ProcessingStep, TrainingStep

    hold = ProcessingStep(name="Hold", code="gate.py", arguments=["hold", {gates!r}])
    train = TrainingStep(name="Train", entry_point="train.py", source_dir="code", depends_on=[hold],
                         cache_config=CacheConfig(enable_caching=True))
    pipeline = Pipeline(name="held", steps=[hold, train])
"""


def follow_in_background(cli, project, execution_id: str, step: str, out: Path, err: Path) -> subprocess.Popen:
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        return subprocess.Popen([sys.executable, "-m", "forgeline.cli.main", "logs", execution_id, step, "--follow"],
                                cwd=project.root, env={**cli.env, "COLUMNS": "200"}, stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=stderr)


def test_logs_follow_of_a_step_that_turns_out_a_cache_hit_prints_the_source_log(gated, cli, wait_until, tmp_path):
    gated.write("code/train.py", TRAIN)
    gated.write("pipeline.py", HELD.format(gates=str(gated.gates)))
    (gated.gates / "release-hold").touch()
    source = run_ok(cli, gated)
    (gated.gates / "release-hold").unlink()
    execution_id = detach(cli, gated)
    wait_until(lambda: step_status(gated, execution_id, "Hold") == "Executing", timeout=60, what="Hold to run")

    out, err = tmp_path / "follow.out", tmp_path / "follow.err"
    follower = follow_in_background(cli, gated, execution_id, "Train", out, err)
    try:
        wait_until(lambda: "waiting for step Train" in err.read_text(), timeout=60, what="the follower to wait")
        (gated.gates / "release-hold").touch()
        assert follower.wait(timeout=60) == 0, err.read_text()
    finally:
        if follower.poll() is None:
            follower.kill()
    assert gated.store().get_step_run(execution_id, "Train").cache_source == source
    assert out.read_text().splitlines() == ["training on the only data there is", "accuracy 0.875"]
    assert "cache hit" in err.read_text() and source in err.read_text()




@pytest.fixture
def cached(project):
    project.write("code/train.py", TRAIN)
    project.write("pipeline.py", CACHED)
    return project


def run_ok(cli, project, *args: str) -> str:
    run = cli("run", "pipeline.py", *args, cwd=project.root)
    assert run.returncode == 0, run
    return project.store().list_executions(limit=1)[0].id


def test_logs_and_metrics_of_a_cache_hit_are_the_source_executions_with_a_note_on_stderr(cached, cli):
    source = run_ok(cli, cached)
    hit = run_ok(cli, cached)
    train = cached.store().get_step_run(hit, "Train")
    assert train.cache_hit and train.cache_source == source

    logs = cli("logs", hit, "Train", cwd=cached.root)
    assert logs.returncode == 0, logs
    assert logs.stdout.splitlines() == ["training on the only data there is", "accuracy 0.875"]
    assert "cache hit" in logs.stderr and source in logs.stderr, logs

    metrics = cli("metrics", hit, "Train", "--json", cwd=cached.root)
    assert metrics.returncode == 0, metrics
    [point] = [json.loads(line) for line in metrics.stdout.splitlines()]
    assert (point["name"], point["value"], point["execution_id"]) == ("accuracy", 0.875, source)
    assert "cache hit" in metrics.stderr and source in metrics.stderr, metrics

    table = cli("metrics", hit, cwd=cached.root)
    assert re.search(r"Train\s+1\s+1\s+accuracy\s+0\.875", table.stdout), table


def test_run_no_cache_runs_every_step_and_still_records_its_results(cached, cli):
    first = run_ok(cli, cached)
    fresh = run_ok(cli, cached, "--no-cache")
    train = cached.store().get_step_run(fresh, "Train")
    assert not train.cache_hit and train.attempts == 1 and train.status.value == "Succeeded"

    after = run_ok(cli, cached)  # the newest entry, written by the --no-cache run, is the one reused
    reused = cached.store().get_step_run(after, "Train")
    assert reused.cache_hit and reused.cache_source == fresh != first


# -- Ctrl-C and a closed terminal ----------------------------------------------------------------------------


class Terminal:
    """The CLI on a real pseudo-terminal of its own (a session whose controlling terminal it is)."""

    ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], columns: int = 100,
                 command: Sequence[str] = ("-m", "forgeline.cli.main"), nohup: bool = False) -> None:
        self.pid, self.master = pty.fork()
        if self.pid == 0:  # the child: becomes the CLI, with Ctrl-C acted on as in a terminal (see with_ctrl_c)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            # a test run started with nohup (or a CLI started so) ignores the hang-up unless a command handles it
            signal.signal(signal.SIGHUP, signal.SIG_IGN if nohup else signal.SIG_DFL)
            os.chdir(cwd)
            os.execve(sys.executable, [sys.executable, *command, *args],
                      {**env, "TERM": "xterm", "COLUMNS": str(columns), "LINES": "50"})
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return self.ANSI.sub("", b"".join(self.chunks).decode(errors="replace"))

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        """Close the terminal, as closing its window does: the kernel sends SIGHUP."""
        os.close(self.master)

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.reader.join(timeout=5)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"the CLI did not exit within {timeout} s:\n{self.text}")


# The `forgeline` console script runs the command in a warm launcher once one listens (cli/warm_command.py): the
# command's process is then not the terminal's, and the script passes Ctrl-C and the hang-up on to it.
CONSOLE_SCRIPT = ("-c", "import sys; from forgeline.cli.entry import main; sys.argv[0] = 'forgeline'; main()")


@pytest.fixture(params=["in process", "warm launcher"])
def terminal_command(request, cli) -> Sequence[str]:
    """How the terminal runs `forgeline`: in its own process, or through a warm launcher already listening."""
    if request.param == "in process":
        return ("-m", "forgeline.cli.main")
    listening = subprocess.run([sys.executable, "-c", START_LAUNCHER], env=cli.env, capture_output=True, text=True,
                               timeout=300)
    assert listening.returncode == 0, listening.stderr
    return CONSOLE_SCRIPT


START_LAUNCHER = """
from forgeline.engine.warm_protocol import connect, launcher_place, start_launcher
place = launcher_place()
connection = connect(place) or start_launcher(place)
assert connection is not None, "no warm launcher came up"
"""


def test_ctrl_c_stops_the_execution_and_the_final_table_shows_the_final_statuses(gated, cli, wait_until,
                                                                                 terminal_command):
    terminal = Terminal(["run", "pipeline.py"], gated.root, cli.env, command=terminal_command)
    store = gated.store()
    [record] = wait_until(lambda: store.list_executions(), timeout=60, what="the execution to be created")
    wait_until(lambda: step_status(gated, record.id, "First") == "Executing", timeout=60, what="First to run")
    wait_until(lambda: "First" in terminal.text, timeout=30, what="the live table")

    terminal.type(b"\x03")
    code = terminal.wait()

    assert code == 1, terminal.text
    assert store.get_execution(record.id).status.value == "Stopped"
    assert store.get_step_run(record.id, "First").status.value == "Stopped"
    after = terminal.text.split("stopping execution")[-1]
    assert re.search(r"^First\s+Processing\s+Stopped\b", after, flags=re.MULTILINE), terminal.text
    assert not re.search(r"^First\s+Processing\s+Executing\b", after, flags=re.MULTILINE), terminal.text
    last = [line for line in terminal.text.splitlines() if line.strip()][-1]
    assert re.fullmatch(rf"execution {record.id} Stopped\s*", last), terminal.text  # no dangling colon


@pytest.mark.parametrize("nohup", [False, True], ids=["hang-up acted on", "hang-up ignored"])
def test_closing_the_terminal_stops_the_execution_like_ctrl_c(gated, cli, wait_until, terminal_command, nohup):
    terminal = Terminal(["run", "pipeline.py"], gated.root, cli.env, command=terminal_command, nohup=nohup)
    store = gated.store()
    [record] = wait_until(lambda: store.list_executions(), timeout=60, what="the execution to be created")
    wait_until(lambda: step_status(gated, record.id, "First") == "Executing", timeout=60, what="First to run")
    wait_until(lambda: "First" in terminal.text, timeout=30, what="the live table")

    terminal.close()

    assert terminal.wait() == 128 + signal.SIGHUP
    # Nobody opened First's gate: only the hang-up can have ended it.
    assert wait_until(lambda: store.get_execution(record.id).status.is_terminal, timeout=60,
                      what="the execution to stop")
    assert store.get_execution(record.id).status.value == "Stopped"


# -- durations ---------------------------------------------------------------------------------------------------


def test_a_retried_steps_duration_is_its_attempts_and_describe_shows_the_wait_between(project, cli, tmp_path):
    project.write("flaky.py", FLAKY)
    project.write("pipeline.py", RETRIED.format(marker=str(tmp_path / "flaky.marker")))
    execution_id = run_ok(cli, project)
    store = project.store()
    first, second = store.list_attempts(execution_id, "Flaky")
    run = store.get_step_run(execution_id, "Flaky")
    assert (first.status.value, second.status.value, run.attempts) == ("Failed", "Succeeded", 2)
    waited = (second.started_at - first.ended_at).total_seconds()
    assert waited >= 1.0  # the retry policy's interval is a floor the orchestrator keeps

    described = cli("executions", "describe", execution_id, cwd=project.root, columns=100)

    assert described.returncode == 0, described
    steps_row = re.search(r"^Flaky\s+Processing\s+Succeeded\s+2\s+(\d+ ms|[\d.]+ s)", described.stdout, re.M)
    assert steps_row, described
    assert steps_row.group(1) == seconds_text(attempts_seconds([first, second])), described
    assert steps_row.group(1) != seconds_text((run.ended_at - run.started_at).total_seconds())
    second_row = re.search(r"^Flaky\s+2\s+Succeeded\s+\S+ \S+\s+(\S+ m?s)\s+(\S+ m?s)", described.stdout, re.M)
    assert second_row and second_row.group(2) == seconds_text(waited), described
    assert "first attempt fails on purpose" in described.stdout


# -- executions list filters -------------------------------------------------------------------------------------


def test_executions_list_filters_by_status_pipeline_and_age(cached, cli):
    cached.write("other.py", "from forgeline.workflow import FailStep, Pipeline\n"
                             "pipeline = Pipeline(name='other', steps=[FailStep(name='No', error_message='no')])\n")
    ok = run_ok(cli, cached)
    failed = cli("run", "other.py", cwd=cached.root)
    assert failed.returncode == 1, failed
    failed_id = cached.store().list_executions(limit=1)[0].id

    def listed(*args: str) -> list[str]:
        run = cli("executions", "list", "--json", *args, cwd=cached.root)
        assert run.returncode == 0, run
        return [record["id"] for record in json.loads(run.stdout)]

    assert listed("--status", "Failed") == [failed_id]
    assert listed("--status", "succeeded,failed") == [failed_id, ok]
    assert listed("--pipeline", "cached") == [ok]
    assert listed("--since", "1h") == [failed_id, ok]
    assert listed("--since", "2999-01-01") == []
    assert listed("--since", "2000-01-01T00:00", "--status", "Succeeded") == [ok]
    assert "no executions match" in cli("executions", "list", "--status", "Stopped", cwd=cached.root).stdout
    for bad, fragment in ((["--status", "Done"], "Succeeded"), (["--since", "yesterday"], "2h")):
        run = cli("executions", "list", *bad, cwd=cached.root)
        assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1, run
        assert fragment in run.stderr and bad[1] in run.stderr, run


# -- the user's own mistakes: one line each ------------------------------------------------------------------------


def one_line_error(run, *fragments: str) -> str:
    assert run.returncode == 1, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run
    assert "Traceback" not in run.output and not lines[0].startswith("error: unexpected"), run
    for fragment in fragments:
        assert fragment in lines[0], (fragment, run)
    return lines[0]


@pytest.mark.parametrize(("source", "fragments"), [
    pytest.param("from forgeline.workflow import Pipeline\n\nsteps = [undefined_step]\n",
                 ["pipeline.py:3", "NameError", "undefined_step"], id="name-error"),
    pytest.param("from forgeline.workflow import Pipeline, ProcessingStep\n"
                 "step = ProcessingStep(name='A', code='a.py', argument=['x'])\n",
                 ["pipeline.py:2", "TypeError", "argument"], id="type-error"),
    pytest.param("from forgeline.workflow import Pipeline\n\ndef broken(:\n    pass\n",
                 ["pipeline.py:3", "SyntaxError"], id="syntax-error"),
    pytest.param("import helper\n", ["helper.py:2", "ZeroDivisionError"], id="error-in-an-imported-module"),
])
def test_errors_in_the_users_pipeline_file_name_the_file_and_line(project, cli, source, fragments):
    project.write("helper.py", "def ratio():\n    return 1 / 0\nratio()\n")
    project.write("pipeline.py", source)

    for command in ("run", "plan"):
        one_line_error(cli(command, "pipeline.py", cwd=project.root), *fragments)


def test_a_directory_given_to_run_is_called_a_directory(gated, cli):
    line = one_line_error(cli("run", ".", cwd=gated.root), "is a directory")
    assert "pipeline.py" in line  # and it points at the pipeline file inside


def test_only_from_an_execution_of_another_pipeline_is_refused_naming_both(gated, cli):
    gated.write("code/train.py", TRAIN)
    gated.write("cached.py", CACHED)
    assert cli("run", "cached.py", cwd=gated.root).returncode == 0
    [source] = [record.id for record in gated.store().list_executions()]
    line = one_line_error(cli("run", "pipeline.py", "--only", "Second", "--from", source, cwd=gated.root),
                          source, "'cached'", "'gated'")
    assert "executions list --pipeline gated" in line
    assert len(gated.store().list_executions()) == 1  # nothing was started


def test_an_unchanged_definition_never_makes_a_new_version(cached, cli):
    run_ok(cli, cached)
    run_ok(cli, cached)
    original = (cached.root / "pipeline.py").read_text()
    cached.write("pipeline.py", original.replace("name=\"cached\"", "name=\"cached\", description=\"changed\""))
    run_ok(cli, cached)
    (cached.root / "pipeline.py").write_text(original)  # the change undone
    run_ok(cli, cached)

    versions = [record.pipeline_version for record in reversed(cached.store().list_executions())]
    assert versions == [1, 1, 2, 1]
    assert [v.version for v in cached.store().list_pipeline_versions("cached")] == [1, 2]


PARAMETERS = """
    from forgeline.workflow import (ParameterBoolean, ParameterFloat, ParameterInteger, ParameterString, Pipeline,
                                    ProcessingStep)

    data = ParameterString("InputData", default_value="data/input.csv")
    suffix = ParameterString("Suffix", default_value="-v1")
    seed = ParameterInteger("Seed", default_value=7)
    ratio = ParameterFloat("Ratio", default_value=0.5)
    verbose = ParameterBoolean("Verbose", default_value=False)
    echo = ProcessingStep(name="Echo", code="echo.py", arguments=[data, suffix, seed, ratio, verbose])
    pipeline = Pipeline(name="params", parameters=[data, suffix, seed, ratio, verbose], steps=[echo])
"""


@pytest.fixture
def parameters(project):
    project.write("echo.py", "import sys\nprint(sys.argv[1:])\n")
    project.write("pipeline.py", PARAMETERS)
    return project


@pytest.mark.parametrize(("name", "fragments"), [
    ("InputData", ["'InputData'", "path", "data/input.csv"]),
    ("Seed", ["'Seed'", "Integer"]),
    ("Ratio", ["'Ratio'", "Float"]),
    ("Verbose", ["'Verbose'", "Boolean"]),
])
def test_an_empty_value_is_refused_where_it_has_no_meaning(parameters, cli, name, fragments):
    one_line_error(cli("run", "pipeline.py", "-p", f"{name}=", cwd=parameters.root), "cannot be empty", *fragments)
    assert parameters.store().list_executions() == []


def test_an_empty_value_is_a_value_for_a_plain_string(parameters, cli):
    run_ok(cli, parameters, "-p", "Suffix=")
    [record] = parameters.store().list_executions()
    assert record.parameters["Suffix"] == ""


def test_every_boolean_spelling_the_error_names_is_accepted(parameters, cli):
    line = one_line_error(cli("plan", "pipeline.py", "-p", "Verbose=maybe", cwd=parameters.root), "'Verbose'")
    pairs = re.findall(r"(\w+)/(\w+)", line.split("use one of", 1)[1])
    assert len(pairs) >= 4, line
    for true, false in pairs:
        for spelling in (true, false, true.upper(), false.capitalize()):
            planned = cli("plan", "pipeline.py", "-p", f"Verbose={spelling}", "--json", cwd=parameters.root)
            assert planned.returncode == 0, (spelling, planned)
        assert ParameterBoolean("B").coerce(true) is True and ParameterBoolean("B").coerce(false) is False
