"""``pipeline.start()`` through the warm launcher: the starter's side (see ``engine/warm_launcher.py``).

Light on purpose: it runs before the engine is imported, and in the common case (a launcher is listening) the
engine is never imported here at all. Used only where it saves that import: a process that has not imported the
engine yet, starting now (not queued) on a SQLite store, with FORGELINE_WARM_LAUNCHER not off. Any other process
(a server, a notebook that already started a pipeline, the CLI) starts executions itself, as before.

Until a request is sent nothing is started, so any failure up to then (no launcher could be started, the request
does not pickle) returns None and the caller starts the execution itself. Once sent, the launcher's child owns
the start: its error is raised here as the caller's own, and a lost answer is an error that says so.
"""

from __future__ import annotations

import os
import select
import socket
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from forgeline.engine.warm_protocol import (
    IDLE_ENV,
    READY,
    LauncherPlace,
    idle_seconds,
    launcher_place,
    receive_message,
    send_message,
    warm_launcher_enabled,
)
from forgeline.errors import ForgelineError
from forgeline.jobs.function_fork import WORKER_ENV, offered_descriptors

if TYPE_CHECKING:
    from forgeline.config import Settings
    from forgeline.engine.execution import PipelineExecution
    from forgeline.workflow.pipeline import Pipeline
    from forgeline.workflow.policies import SelectiveExecutionConfig

READY_TIMEOUT_SECONDS = 120.0
"""How long a starter waits for a launcher it started to listen (its imports, on a loaded machine)."""
ENGINE_MODULE = "forgeline.engine.launch"


def start_warm(pipeline: Pipeline, parameters: Mapping[str, Any], settings: Settings,
               selective: SelectiveExecutionConfig | None, keep_jobs: bool | None) -> PipelineExecution | None:
    """Start ``pipeline`` through this forgeline's warm launcher (starting one if none listens) and return the
    execution's handle; None, having started nothing, when this process should start it itself."""
    if not usable_here(settings):
        return None
    place = launcher_place()
    if place is None:
        return None
    connection = connect(place) or start_launcher(place)
    if connection is None:
        return None
    with connection:
        request = {
            "definition": pipeline.to_request(), "parameters": dict(parameters), "settings": settings,
            "selective": selective, "keep_jobs": keep_jobs, "environ": dict(os.environ), "cwd": os.getcwd(),
            "umask": _umask(), "argv": list(sys.argv), "path": list(sys.path),
        }
        descriptors = [sys.stdout.fileno(), sys.stderr.fileno(), *offered_descriptors()]
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            send_message(connection, request, descriptors)
        except (OSError, ValueError, TypeError, AttributeError, RecursionError):  # unpicklable, or it went away
            return None
        try:
            reply, received = receive_message(connection)
        except (OSError, EOFError) as exc:
            raise ForgelineError(
                f"the warm launcher ({place.socket}) took the start of pipeline {pipeline.name!r} and ended without "
                f"answering ({exc}); see {place.log}, and `forgeline executions list` for whether it started. "
                "FORGELINE_WARM_LAUNCHER=0 starts executions in this process instead") from None
    if "error" in reply:
        raise reply["error"]
    from forgeline.engine.end_notice import EndNotice
    from forgeline.engine.execution import PipelineExecution

    return PipelineExecution.started(reply["execution_id"], settings, EndNotice(received[0]) if received else None)


def usable_here(settings: Settings) -> bool:
    """Whether a start in this process goes through the warm launcher (see the module's docstring)."""
    return (warm_launcher_enabled() and ENGINE_MODULE not in sys.modules and not os.environ.get(WORKER_ENV)
            and settings.database_url.startswith("sqlite:///") and hasattr(os, "fork"))


def connect(place: LauncherPlace) -> socket.socket | None:
    """A connection to the launcher listening at ``place``; None when none does."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(place.socket)
    except OSError:
        connection.close()
        return None
    return connection


def start_launcher(place: LauncherPlace) -> socket.socket | None:
    """Start a launcher at ``place`` in a session of its own and connect once it listens; None if it does not."""
    import subprocess

    try:
        idle = idle_seconds()
    except ValueError as exc:
        raise ForgelineError(str(exc)) from None
    read_fd, write_fd = os.pipe()
    try:
        with open(place.log, "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "forgeline.engine.warm_launcher", place.socket, str(write_fd), f"{idle:g}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(write_fd,), start_new_session=True,
                cwd="/", env={k: v for k, v in os.environ.items() if k not in (WORKER_ENV, IDLE_ENV)},
            )
    except OSError:
        os.close(read_fd)
        return None
    finally:
        os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], READY_TIMEOUT_SECONDS)
        news = os.read(read_fd, 1) if ready else b""
    finally:
        os.close(read_fd)
    return connect(place) if news == READY else None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
