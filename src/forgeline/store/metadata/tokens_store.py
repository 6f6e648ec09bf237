"""TokenStore: the API tokens a server accepts, kept as hashes with a name and a role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Role(StrEnum):
    """What a token may do, each role including the ones before it: viewer < operator < approver < admin."""

    VIEWER = "viewer"  # reads everything
    OPERATOR = "operator"  # starts, stops, retries and resumes executions
    APPROVER = "approver"  # approves and rejects model packages
    ADMIN = "admin"  # manages tokens, schedules, triggers and alarms

    @property
    def rank(self) -> int:
        """Position in the order of roles (a higher rank may do everything a lower one may)."""
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """Whether a token of this role may do what ``needed`` may."""
        return self.rank >= needed.rank


@dataclass(frozen=True)
class ApiTokenRecord:
    """A stored token: its name, role and history; the token itself is never stored, only its hash."""

    id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class TokenStore(Protocol):
    """API tokens by name and hash; each call is one transaction."""

    def create_token(self, name: str, role: Role, token_hash: str, *, created_by: str | None = None
                     ) -> ApiTokenRecord:
        """Store a new token's hash under ``name``; TokenError when a token (even revoked) has that name."""
        ...

    def find_token(self, token_hash: str) -> ApiTokenRecord | None:
        """The unrevoked token with this hash, or None."""
        ...

    def mark_token_used(self, name: str) -> None:
        """Record that the token was used just now."""
        ...

    def list_tokens(self) -> list[ApiTokenRecord]:
        """Every token, revoked ones included, by name."""
        ...

    def revoke_token(self, name: str) -> ApiTokenRecord:
        """Revoke a token from now on; TokenError names the existing ones when there is none by that name."""
        ...
