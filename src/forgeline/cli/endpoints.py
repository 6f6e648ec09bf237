"""``forgeline endpoints``: create, update, list, describe, delete real-time endpoints and read their logs."""

from __future__ import annotations

import typer

app = typer.Typer(help="Real-time endpoints: inference pipelines served over HTTP.", no_args_is_help=True)
