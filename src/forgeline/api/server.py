"""The ``forgeline server`` process: the API on uvicorn in the main thread, background services in threads.

uvicorn handles SIGTERM and SIGINT: it stops accepting, finishes the requests in flight and returns; then the
services are told to stop and joined. Executions the server started run on in their own orchestrators.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

import uvicorn

from forgeline.alarms.dispatcher import AlarmDispatcher
from forgeline.alarms.settings import AlarmSettings
from forgeline.api.app import create_app
from forgeline.api.auth import Authenticator, check_no_auth_host
from forgeline.api.services import BackgroundService, ServiceThreads
from forgeline.engine.launch import QueueLauncher
from forgeline.engine.runtime import Runtime
from forgeline.triggers.services import trigger_services

logger = logging.getLogger("forgeline.server")


@dataclass(frozen=True)
class ServerOptions:
    """Where the server listens and whether calls need a token."""

    host: str = "127.0.0.1"
    port: int = 8080
    no_auth: bool = False
    log_level: str = "info"


class QueueService:
    """Starts Queued executions (from the API, schedules, triggers), at most max_concurrent_executions at once."""

    name = "queue"

    def __init__(self, runtime: Runtime) -> None:
        """A launcher over ``runtime``'s store and its max_concurrent_executions setting."""
        self.launcher = QueueLauncher(runtime, runtime.settings.max_concurrent_executions)

    def run(self, stop: threading.Event) -> None:
        """Claim and launch queued executions, and settle lost ones, until ``stop``."""
        self.launcher.run_forever(stop)


def default_services(runtime: Runtime) -> list[BackgroundService]:
    """The services every server runs: the queue launcher, the schedules, the triggers and the alarms."""
    return [QueueService(runtime), *trigger_services(runtime),
            AlarmDispatcher(runtime.store, AlarmSettings.from_env())]


def serve_api(runtime: Runtime, options: ServerOptions, services: Sequence[BackgroundService] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then stop the services; ConfigurationError for --no-auth off loopback."""
    if options.no_auth:
        check_no_auth_host(options.host)
    app = create_app(runtime, Authenticator(None if options.no_auth else runtime.store))
    threads = ServiceThreads(default_services(runtime) if services is None else services)
    config = uvicorn.Config(app, host=options.host, port=options.port, log_level=options.log_level,
                            access_log=False, lifespan="off")
    server = uvicorn.Server(config)

    def stop_serving(signum: int, frame: FrameType | None) -> None:
        # uvicorn puts this handler back when it ends and calls it with the signal it caught: the process then
        # stops the services and exits normally instead of dying of that signal.
        server.should_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop_serving)
    threads.start()
    try:
        server.run()
    finally:
        still = threads.stop()
        if still:
            logger.warning("background services still running at exit: %s", ", ".join(still))
        runtime.store.close()
