"""ServerStore: what server processes sharing one database coordinate through: duty leases and read cursors."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


class ServerStore(Protocol):
    """Named leases (one holder per duty until it expires) and named cursors; each call is one transaction."""

    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Hold the duty ``name`` for ``seconds`` from now; True when free, expired, or ``owner``'s already."""
        ...

    def hold_lease(self, name: str, owner: str, seconds: float) -> int | None:
        """Like acquire_lease, but the epoch held (renewing keeps it, a new holder gets the next), or None."""
        ...

    def lease_fence(self, name: str, epoch: int) -> AbstractContextManager[None]:
        """Within it, every write of this thread first checks ``name`` is still at ``epoch``: StaleLeaseError."""
        ...

    def release_lease(self, name: str, owner: str) -> None:
        """Give the duty up if ``owner`` holds it (another holder's lease stays)."""
        ...

    def get_cursor(self, name: str) -> int | None:
        """How far the reader ``name`` got in its append-only table, or None before its first step."""
        ...

    def set_cursor(self, name: str, position: int) -> None:
        """Remember the reader ``name``'s position."""
        ...
