"""The ``forgeline`` command: one Typer app assembled from one module per command group."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from forgeline.cli import endpoints, endpoints_loadtest, executions, logs, metrics, models, pipelines, reports
from forgeline.cli.gc import gc
from forgeline.cli.imports import app as import_app
from forgeline.cli.run import plan, run
from forgeline.cli.serve import serve
from forgeline.config import AUTO_RESUME_ENV
from forgeline.engine.loader import shown, user_frame
from forgeline.errors import ForgelineError

app = typer.Typer(help="forgeline: ML pipelines that run locally in milliseconds per step.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def options(auto_resume: Annotated[bool, typer.Option(
        "--auto-resume", help="Resume any execution found with its orchestrator lost (or FORGELINE_AUTO_RESUME=1).")]
        = False) -> None:
    """forgeline: ML pipelines that run locally in milliseconds per step."""
    if auto_resume:
        os.environ[AUTO_RESUME_ENV] = "1"  # every command reads its settings from the environment


app.command("run")(run)
app.command("plan")(plan)
app.command("logs")(logs.logs)
app.command("metrics")(metrics.metrics)
app.command("serve")(serve)
app.command("gc")(gc)
app.add_typer(executions.app, name="executions")
app.add_typer(pipelines.app, name="pipelines")
app.add_typer(models.app, name="models")
app.add_typer(reports.app, name="reports")
app.add_typer(import_app, name="import")
app.add_typer(endpoints.app, name="endpoints")
endpoints.app.command("loadtest")(endpoints_loadtest.loadtest)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; errors print one line (a traceback only with --debug)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    err = Console(stderr=True, soft_wrap=True)
    try:
        app(args=args, prog_name="forgeline", standalone_mode=True)
    except SystemExit as exc:  # the CLI framework reports usage errors and exit codes this way
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ForgelineError as exc:
        if debug:
            traceback.print_exc()
        err.print(Text.assemble(("error: ", "red"), str(exc)), highlight=False)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the edge: anything unexpected still gets one line
        if debug:
            traceback.print_exc()
        frame = user_frame(exc)
        if frame is not None:  # it arose in the user's own code: say where, as Python would
            err.print(Text.assemble(("error: ", "red"), f"{shown(frame.filename)}:{frame.lineno}: "
                                    f"{type(exc).__name__}: {exc}"), highlight=False)
            return 1
        err.print(Text.assemble(("error: ", "red"), f"unexpected {type(exc).__name__}: {exc} "
                                "(rerun with --debug for details)"), highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
