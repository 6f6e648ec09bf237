"""Commands imported on use: ``forgeline --help`` lists every command without importing it, and every one loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer

from forgeline.cli.main import COMMANDS, app

NOT_FOR_HELP = ("forgeline.cli.run", "forgeline.cli.executions", "forgeline.engine", "forgeline.store",
                "forgeline.workflow", "sqlalchemy", "alembic", "rich.markdown", "pygments")


def forgeline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "forgeline.cli.main", *args], capture_output=True, text=True,
                          timeout=120)


def test_help_lists_every_command_with_its_summary():
    shown = forgeline("--help")

    assert shown.returncode == 0, shown
    listed = shown.stdout.split("Commands:")[1]
    for name, command in COMMANDS.items():
        line = next(line for line in listed.splitlines() if line.split()[:1] == [name])
        assert command.summary.split()[0] in line, (name, line)


def test_help_imports_none_of_the_commands():
    probe = ("import contextlib, io, json, sys\n"
             "from forgeline.cli.main import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    code = main(['--help'])\n"
             "print(json.dumps([code, sorted(sys.modules)]))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)

    code, modules = json.loads(done.stdout)
    assert code == 0, done
    imported = [m for m in modules if m.startswith(NOT_FOR_HELP)]
    assert imported == [], imported


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_loads_and_answers_help(name):
    shown = forgeline(name, "--help")

    assert shown.returncode == 0, shown
    assert shown.stdout.startswith(f"Usage: forgeline {name} "), shown
    assert "Traceback" not in shown.stderr, shown


@pytest.mark.parametrize("name", list(COMMANDS))
def test_summary_is_the_first_line_of_the_commands_own_help(name):
    group = typer.main.get_command(app)
    command = group.load(name)  # type: ignore[attr-defined]

    own = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
    assert own == COMMANDS[name].summary


def test_every_subcommand_of_every_group_answers_help():
    group = typer.main.get_command(app)
    checked = 0
    for name in COMMANDS:
        command = group.load(name)  # type: ignore[attr-defined]
        for sub in getattr(command, "commands", {}):
            with pytest.raises(SystemExit) as ended:
                group.main([name, sub, "--help"], prog_name="forgeline", standalone_mode=True)
            assert ended.value.code == 0, (name, sub)
            checked += 1
    assert checked > 20


def test_a_mistyped_command_is_matched_against_every_name():
    shown = forgeline("exectuions", "list")

    assert shown.returncode == 2, shown
    assert "No such command 'exectuions'" in shown.stderr and "'executions'" in shown.stderr, shown

