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
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from forgeline.engine.warm_protocol import (
    connect,
    launcher_place,
    receive_message,
    requester_state,
    send_message,
    start_launcher,
    warm_launcher_enabled,
)
from forgeline.errors import ForgelineError
from forgeline.jobs.function_fork import WORKER_ENV, offered_descriptors

if TYPE_CHECKING:
    from forgeline.config import Settings
    from forgeline.engine.execution import PipelineExecution
    from forgeline.workflow.pipeline import Pipeline
    from forgeline.workflow.policies import SelectiveExecutionConfig

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
    try:
        connection = connect(place) or start_launcher(place)
    except ValueError as exc:  # FORGELINE_WARM_LAUNCHER_IDLE_SECONDS
        raise ForgelineError(str(exc)) from None
    if connection is None:
        return None
    with connection:
        request = {
            "kind": "start", "definition": pipeline.to_request(), "parameters": dict(parameters),
            "settings": settings, "selective": selective, "keep_jobs": keep_jobs, **requester_state((1, 2)),
        }
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            send_message(connection, request, [1, 2, *offered_descriptors()])
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
