"""The server half of SqlMetadataStore: API tokens, duty leases and read cursors."""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy.exc import IntegrityError

from forgeline.store.metadata import server_repository, tokens_repository
from forgeline.store.metadata.tokens_store import ApiTokenRecord, Role
from forgeline.store.metadata.transactions import Transactions


class SqlServerStore:
    """Tokens, leases and cursors on a SQL database; one transaction per call."""

    _tx: Transactions

    def create_token(self, name: str, role: Role, token_hash: str, *, created_by: str | None = None
                     ) -> ApiTokenRecord:
        """Store a new token's hash under ``name``; TokenError when a token (even revoked) has that name."""
        return self._tx.write(lambda connection: tokens_repository.insert_token(
            connection, name, Role(role), token_hash, created_by))

    def find_token(self, token_hash: str) -> ApiTokenRecord | None:
        """The unrevoked token with this hash, or None."""
        return self._tx.read(lambda connection: tokens_repository.find_by_hash(connection, token_hash))

    def mark_token_used(self, name: str) -> None:
        """Record that the token was used just now."""
        self._tx.write(lambda connection: tokens_repository.mark_used(connection, name))

    def list_tokens(self) -> list[ApiTokenRecord]:
        """Every token, revoked ones included, by name."""
        return self._tx.read(tokens_repository.list_tokens)

    def revoke_token(self, name: str) -> ApiTokenRecord:
        """Revoke a token from now on; TokenError names the existing ones when there is none by that name."""
        return self._tx.write(lambda connection: tokens_repository.revoke(connection, name))

    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Hold the duty ``name`` for ``seconds`` from now; True when free, expired, or ``owner``'s already."""
        return self.hold_lease(name, owner, seconds) is not None

    def hold_lease(self, name: str, owner: str, seconds: float) -> int | None:
        """Like acquire_lease, but the epoch held (renewing keeps it, a new holder gets the next), or None."""
        try:
            return self._tx.write(lambda connection: server_repository.take_lease(connection, name, owner, seconds))
        except IntegrityError:  # another process inserted the lease first: it holds the duty
            return None

    def lease_fence(self, name: str, epoch: int) -> AbstractContextManager[None]:
        """Within it, every write of this thread first checks ``name`` is still at ``epoch``: StaleLeaseError."""
        return self._tx.fenced(lambda connection: server_repository.check_lease(connection, name, epoch))

    def release_lease(self, name: str, owner: str) -> None:
        """Give the duty up if ``owner`` holds it (another holder's lease stays)."""
        self._tx.write(lambda connection: server_repository.drop_lease(connection, name, owner))

    def get_cursor(self, name: str) -> int | None:
        """How far the reader ``name`` got in its append-only table, or None before its first step."""
        return self._tx.read(lambda connection: server_repository.load_cursor(connection, name))

    def set_cursor(self, name: str, position: int) -> None:
        """Remember the reader ``name``'s position."""
        self._tx.write(lambda connection: server_repository.save_cursor(connection, name, position))
