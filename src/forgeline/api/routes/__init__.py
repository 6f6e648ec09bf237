"""The API's route modules, each exposing ``router: APIRouter``; create_app includes every one listed here."""

from __future__ import annotations

import importlib

from fastapi import APIRouter

MODULES = (
    "pipelines",
    "executions",
    "logs",
    "models",
    "endpoints",
    "alarms",
    "schedules",
    "triggers",
    "session",
    "live",
)
"""Route modules of forgeline.api.routes, one per resource; a new one is added by one line."""


def routers() -> list[APIRouter]:
    """The router of every module in MODULES, in order."""
    return [importlib.import_module(f"{__name__}.{name}").router for name in MODULES]
