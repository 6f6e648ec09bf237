"""The ``forgeline`` command: one Typer app assembled from one module per command group."""

from __future__ import annotations

import gc
import os
import sys
from typing import Annotated

import typer

from forgeline.cli.lazy import LazyCommand, LazyGroup
from forgeline.errors import ForgelineError

# Every command, imported only when it runs: ``forgeline --help`` lists this table and imports nothing behind it.
# To add a command or a command group, add a line here ("module:attribute" names a typer.Typer or a function;
# the summary is its help's first line, which tests/cli/test_lazy.py checks), never an import above.
COMMANDS: dict[str, LazyCommand] = {
    "run": LazyCommand("forgeline.cli.run:run", "Start a pipeline and watch its steps; exit 0 when it succeeds."),
    "plan": LazyCommand("forgeline.cli.run:plan",
                        "Show, before running, which steps would be cache hits and why each miss misses."),
    "logs": LazyCommand("forgeline.cli.logs:logs", "Print a step's stdout and stderr (for a cache hit: those of "
                                                   "the execution that ran it)."),
    "metrics": LazyCommand("forgeline.cli.metrics:metrics",
                           "Print the metric values parsed from training logs, in the order they were printed."),
    "serve": LazyCommand("forgeline.cli.serve:serve", "Serve every endpoint: POST /endpoints/<name>/invocations, "
                                                      "GET /ping, /endpoints, /metrics."),
    "gc": LazyCommand("forgeline.cli.gc:gc", "Remove finished executions older than --older-than with their job "
                                             "folders, logs and unused artifacts."),
    "executions": LazyCommand("forgeline.cli.executions:app", "Inspect and control executions."),
    "pipelines": LazyCommand("forgeline.cli.pipelines:app", "Stored pipelines and their definition versions."),
    "models": LazyCommand("forgeline.cli.models:app",
                          "Registered model packages: versions, approvals, lineage and metrics."),
    "reports": LazyCommand("forgeline.cli.reports:app", "Evaluation reports (HTML and PDF) that executions produced."),
    "import": LazyCommand("forgeline.cli.imports:app", "Import pipelines written for other platforms."),
    "endpoints": LazyCommand("forgeline.cli.endpoints:app",
                             "Real-time endpoints: inference pipelines served over HTTP."),
    "server": LazyCommand("forgeline.cli.server:server", "Serve the API (OpenAPI at /docs) and run queued "
                                                         "executions, schedules, triggers and alarms."),
    "tokens": LazyCommand("forgeline.cli.tokens:app",
                          "API tokens for a forgeline server: roles viewer, operator, approver, admin."),
    "schedules": LazyCommand("forgeline.cli.schedules:app",
                             "Schedules: pipelines a forgeline server starts on a cron schedule."),
    "triggers": LazyCommand("forgeline.cli.triggers:app",
                            "File triggers: pipelines a forgeline server starts when a file arrives."),
    "alarms": LazyCommand("forgeline.cli.alarms:app",
                          "Alarms: events sent to webhooks, email and commands by the server."),
}


class ForgelineGroup(LazyGroup):
    """The root ``forgeline`` group: the commands of :data:`COMMANDS`."""

    lazy_commands = COMMANDS


# Plain help (no rich markup): rendering it with rich would import rich's Markdown and Pygments, 0.1 s per --help.
app = typer.Typer(cls=ForgelineGroup, help="forgeline: ML pipelines that run locally in milliseconds per step.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, rich_markup_mode=None)


@app.callback()
def options(auto_resume: Annotated[bool, typer.Option(
        "--auto-resume", help="Resume any execution found with its orchestrator lost (or FORGELINE_AUTO_RESUME=1).")]
        = False) -> None:
    """forgeline: ML pipelines that run locally in milliseconds per step."""
    if auto_resume:
        from forgeline.config import AUTO_RESUME_ENV

        os.environ[AUTO_RESUME_ENV] = "1"  # every command reads its settings from the environment


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; errors print one line (a traceback only with --debug).

    Run as the program (``argv`` None), it freezes what it allocated once it is done (``gc.freeze``), so the
    interpreter's exit does not scan SQLAlchemy's and the commands' objects for cycles (tens of ms).
    """
    try:
        return run_cli(argv)
    finally:
        if argv is None:
            gc.freeze()


def run_cli(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (None: the process's arguments) and run the command; the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        app(args=args, prog_name="forgeline", standalone_mode=True)
    except SystemExit as exc:  # the CLI framework reports usage errors and exit codes this way
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ForgelineError as exc:
        if debug:
            print_traceback()
        print_error(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the edge: anything unexpected still gets one line
        if debug:
            print_traceback()
        from forgeline.engine.loader import shown, user_frame

        frame = user_frame(exc)
        if frame is not None:  # it arose in the user's own code: say where, as Python would
            print_error(f"{shown(frame.filename)}:{frame.lineno}: {type(exc).__name__}: {exc}")
            return 1
        print_error(f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for details)")
        return 1
    return 0


def print_traceback() -> None:
    """Print the exception being handled with its traceback (``--debug``)."""
    import traceback

    traceback.print_exc()


def print_error(message: str) -> None:
    """Print one ``error:`` line on stderr, in red on a terminal."""
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True, soft_wrap=True).print(Text.assemble(("error: ", "red"), message), highlight=False)


if __name__ == "__main__":
    sys.exit(main())
