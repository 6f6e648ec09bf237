"""Browser sessions: the token kept in an HttpOnly, SameSite=Strict cookie, and the CSRF rule for calls using it.

A call's credentials are its ``Authorization`` header, else the session cookie. A call that changes something
(any method but GET/HEAD/OPTIONS) on the strength of the cookie must also carry the ``X-Forgeline-CSRF`` header:
a page on another site can make a browser send the cookie, but not a custom header without a CORS preflight this
server never grants.
"""

from __future__ import annotations

from fastapi import Request, Response

from forgeline.errors import PermissionDeniedError

COOKIE = "forgeline_session"
CSRF_HEADER = "x-forgeline-csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_AGE_SECONDS = 12 * 3600


def request_credentials(request: Request) -> str | None:
    """The Authorization header of ``request``, or ``Bearer <cookie>``; PermissionDeniedError (403) for a
    cookie-authenticated change without the CSRF header."""
    header = request.headers.get("authorization")
    if header:
        return header
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    if request.method not in SAFE_METHODS and not request.headers.get(CSRF_HEADER):
        raise PermissionDeniedError(f"a change made with the session cookie needs the {CSRF_HEADER} header "
                                    "(sent by the web UI): the request may come from another site")
    return f"Bearer {token}"


def set_session(response: Response, request: Request, token: str) -> None:
    """Keep ``token`` in the session cookie: HttpOnly, SameSite=Strict, Secure over HTTPS."""
    response.set_cookie(COOKIE, token, max_age=MAX_AGE_SECONDS, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def clear_session(response: Response) -> None:
    """Forget the session cookie."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
