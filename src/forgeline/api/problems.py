"""How the API reports a failure: an HTTP status chosen by the error's type and ``{"error": "<one line>"}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from forgeline.errors import (
    AuthenticationError,
    ExecutionFinishedError,
    ExecutionOwnedError,
    ForgelineError,
    NotFoundError,
    ParameterError,
    PermissionDeniedError,
    StoreUnavailableError,
)

logger = logging.getLogger("forgeline.server")

STATUS_BY_ERROR: tuple[tuple[type[ForgelineError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ExecutionFinishedError, 409),
    (ExecutionOwnedError, 409),
    (ParameterError, 422),
    (StoreUnavailableError, 503),
)
"""The first entry whose type the error is decides its status; any other ForgelineError is a 400."""


def error_response(status: int, message: str) -> JSONResponse:
    """A JSON error: ``{"error": message}`` on one line."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": " ".join(message.split())}, status_code=status, headers=headers)


def status_of(error: ForgelineError) -> int:
    """The HTTP status of a forgeline error."""
    return next((status for kind, status in STATUS_BY_ERROR if isinstance(error, kind)), 400)


def describe_invalid(error: RequestValidationError) -> str:
    """One line naming each bad field of a request, e.g. ``query parameter 'limit': ...``."""
    parts = []
    for item in error.errors():
        where = [str(part) for part in item.get("loc", ())]
        kind = {"query": "query parameter", "path": "path parameter", "body": "body field",
                "header": "header"}.get(where[0], where[0]) if where else "request"
        name = ".".join(part for part in where[1:] if not part.isdigit())  # 'status', not 'status.0'
        parts.append(f"{kind} '{name}': {item.get('msg', 'invalid')}" if name else f"{kind}: {item.get('msg')}")
    return "; ".join(parts) or "invalid request"


def install_handlers(app: FastAPI) -> None:
    """Make every failure of ``app`` a JSON error with one line."""

    @app.exception_handler(ForgelineError)
    async def forgeline_error(request: Request, error: ForgelineError) -> JSONResponse:
        return error_response(status_of(error), str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, describe_invalid(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, f"unexpected {type(error).__name__}: {error} (see the server's log)")
