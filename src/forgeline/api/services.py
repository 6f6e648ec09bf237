"""Background services a ``forgeline server`` runs beside the API, each in its own thread until told to stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

logger = logging.getLogger("forgeline.server")


class BackgroundService(Protocol):
    """A long-running duty (queue launcher, schedules, triggers, alarms); returns soon after ``stop`` is set."""

    name: str

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set."""
        ...


class ServiceThreads:
    """Runs services in daemon threads; a service that raises is logged (the API and the others go on)."""

    def __init__(self, services: Sequence[BackgroundService]) -> None:
        """Prepare one thread per service (started by ``start``)."""
        self.stop_event = threading.Event()
        self.services = list(services)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start every service."""
        for service in self.services:
            thread = threading.Thread(target=self._run, args=(service,), name=f"forgeline-{service.name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> list[str]:
        """Ask every service to stop and wait up to ``timeout`` s in all; the names of those still running."""
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout / max(len(self._threads), 1))
        return [thread.name for thread in self._threads if thread.is_alive()]

    def _run(self, service: BackgroundService) -> None:
        try:
            service.run(self.stop_event)
        except Exception:  # one service's fault must not take the server down
            logger.exception("background service %s stopped with an error", service.name)
