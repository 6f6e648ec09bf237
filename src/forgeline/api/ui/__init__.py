"""The web UI: static pages (plain ES modules and CSS shipped in the package) served at ``/``.

The pages read and change everything through the public API under /api/v1, as any client does.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount_ui(app: FastAPI) -> None:
    """Serve the UI's files at ``/`` (index.html for ``/``); mounted last, after every API route."""
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="ui")
