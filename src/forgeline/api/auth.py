"""Who calls the API: bearer tokens (kept hashed in the store) with a role, checked by ``require_role``."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from forgeline.api.session import request_credentials
from forgeline.errors import AuthenticationError, ConfigurationError, PermissionDeniedError, TokenError
from forgeline.store.metadata.tokens_store import ApiTokenRecord, Role, TokenStore

__all__ = ["Authenticator", "Principal", "Role", "hash_token", "issue_token", "parse_role", "require_role"]

TOKEN_PREFIX = "fl_"
MARK_USE_SECONDS = 60.0
"""A token's last use is written at most this often (not on every call)."""
ANONYMOUS = "anonymous"
"""The actor recorded for calls to a server started with --no-auth."""


@dataclass(frozen=True)
class Principal:
    """The caller of one request: the token's name (recorded as the actor of what it does) and its role."""

    name: str
    role: Role


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256 of a high-entropy secret (no salt needed), in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(store: TokenStore, name: str, role: Role, created_by: str | None = None
                ) -> tuple[ApiTokenRecord, str]:
    """Make a new token, store its hash under ``name`` and return the record with the token (shown once)."""
    if not name.strip() or any(c.isspace() for c in name):
        raise TokenError(f"token name {name!r}: give a name without spaces, e.g. ci or alice")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return store.create_token(name, role, hash_token(token), created_by=created_by), token


def parse_role(text: str) -> Role:
    """A Role from its name (any case); TokenError naming the roles otherwise."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise TokenError(f"role {text!r}: expected one of {', '.join(r.value for r in Role)}") from None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or localhost) only accepts connections from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_no_auth_host(host: str) -> None:
    """ConfigurationError unless ``host`` is a loopback address: --no-auth never serves the network."""
    if not is_loopback(host):
        raise ConfigurationError(f"--no-auth is only allowed on a loopback host (127.0.0.1, ::1, localhost), not "
                                 f"{host!r}: create a token with `forgeline tokens create NAME --role ROLE` instead")


class Authenticator:
    """Turns a request's Authorization header into a Principal; without a store (--no-auth) everyone is admin."""

    def __init__(self, store: TokenStore | None) -> None:
        """``store``: where tokens are looked up; None serves without authentication (loopback only)."""
        self.store = store
        self._marked: dict[str, float] = {}  # token name -> when its use was last written (monotonic)

    @property
    def enabled(self) -> bool:
        """Whether calls need a token."""
        return self.store is not None

    def principal(self, authorization: str | None) -> Principal:
        """The caller, or AuthenticationError (401) for a missing, malformed, unknown or revoked token."""
        if self.store is None:
            return Principal(ANONYMOUS, Role.ADMIN)
        scheme, _, token = (authorization or "").partition(" ")
        if not authorization:
            raise AuthenticationError("this API needs a token: send 'Authorization: Bearer <token>' "
                                      "(create one with `forgeline tokens create NAME --role ROLE`)")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("the Authorization header must read 'Bearer <token>'")
        record = self.store.find_token(hash_token(token.strip()))
        if record is None:
            raise AuthenticationError("unknown or revoked token")
        now = time.monotonic()
        if now - self._marked.get(record.name, -MARK_USE_SECONDS) >= MARK_USE_SECONDS:
            self._marked[record.name] = now
            self.store.mark_token_used(record.name)
        return Principal(record.name, record.role)


def require_role(role: Role) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the caller when its role allows ``role``, else 401/403 (a JSON error)."""

    def dependency(request: Request) -> Principal:
        authenticator: Authenticator = request.app.state.authenticator
        caller = authenticator.principal(request_credentials(request))
        if not caller.role.allows(role):
            raise PermissionDeniedError(f"token '{caller.name}' has role {caller.role.value}; "
                                        f"this call needs {role.value} or higher")
        request.state.principal = caller
        return caller

    dependency.__name__ = f"require_{role.value}"
    return dependency
