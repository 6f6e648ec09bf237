"""/session: log in to the web UI with a token (kept in an HttpOnly cookie), who is logged in, log out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from forgeline.api.auth import Authenticator, Principal
from forgeline.api.context import Viewer
from forgeline.api.session import clear_session, set_session

router = APIRouter(prefix="/session", tags=["session"])


class Login(BaseModel):
    """A token made with `forgeline tokens create`."""

    token: str = Field(description="The API token to keep in the session cookie.")


def whoami(caller: Principal, authenticator: Authenticator) -> dict[str, object]:
    """The caller's name and role, and whether this server checks tokens at all."""
    return {"name": caller.name, "role": caller.role.value, "auth": authenticator.enabled}


@router.post("")
def login(body: Login, request: Request, response: Response) -> dict[str, object]:
    """Check the token (401 when unknown) and keep it in an HttpOnly, SameSite=Strict cookie."""
    authenticator: Authenticator = request.app.state.authenticator
    caller = authenticator.principal(f"Bearer {body.token.strip()}")
    set_session(response, request, body.token.strip())
    return whoami(caller, authenticator)


@router.get("")
def current(request: Request, caller: Viewer) -> dict[str, object]:
    """Who the session (or the bearer token) is: name, role."""
    return whoami(caller, request.app.state.authenticator)


@router.delete("")
def logout(response: Response) -> dict[str, bool]:
    """Forget the session cookie."""
    clear_session(response)
    return {"logged_out": True}
