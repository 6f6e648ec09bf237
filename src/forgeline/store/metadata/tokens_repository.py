"""Repository functions for API tokens, each in a caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, insert, select, update

from forgeline.errors import TokenError
from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.tables import api_tokens
from forgeline.store.metadata.tokens_store import ApiTokenRecord, Role


def insert_token(connection: Connection, name: str, role: Role, token_hash: str,
                 created_by: str | None) -> ApiTokenRecord:
    """Add a token; TokenError when the name is taken."""
    if connection.execute(select(api_tokens.c.id).where(api_tokens.c.name == name)).first() is not None:
        raise TokenError(f"a token named '{name}' already exists; choose another name "
                         f"(or `forgeline tokens revoke {name}` and pick a new one)")
    connection.execute(insert(api_tokens).values(
        id=uuid.uuid4().hex, name=name, role=Role(role).value, token_hash=token_hash, created_by=created_by,
        created_at=utc_now(),
    ))
    return load_token(connection, name)


def find_by_hash(connection: Connection, token_hash: str) -> ApiTokenRecord | None:
    """The unrevoked token with this hash, or None."""
    row = connection.execute(select(api_tokens).where(
        api_tokens.c.token_hash == token_hash, api_tokens.c.revoked_at.is_(None))).first()
    return None if row is None else _to_record(row)


def mark_used(connection: Connection, name: str) -> None:
    """Set last_used_at to now."""
    connection.execute(update(api_tokens).where(api_tokens.c.name == name).values(last_used_at=utc_now()))


def load_token(connection: Connection, name: str) -> ApiTokenRecord:
    """One token by name; TokenError listing the existing names."""
    row = connection.execute(select(api_tokens).where(api_tokens.c.name == name)).first()
    if row is not None:
        return _to_record(row)
    names = list(connection.execute(select(api_tokens.c.name).order_by(api_tokens.c.name)).scalars())
    known = f"tokens: {', '.join(names)}" if names else "none yet: `forgeline tokens create NAME --role ROLE`"
    raise TokenError(f"no token named '{name}' ({known})")


def list_tokens(connection: Connection) -> list[ApiTokenRecord]:
    """Every token, by name."""
    return [_to_record(row) for row in connection.execute(select(api_tokens).order_by(api_tokens.c.name))]


def revoke(connection: Connection, name: str) -> ApiTokenRecord:
    """Mark a token revoked (kept, so its name stays in the approval history's meaning)."""
    current = load_token(connection, name)
    if current.revoked_at is None:
        connection.execute(update(api_tokens).where(api_tokens.c.name == name).values(revoked_at=utc_now()))
    return load_token(connection, name)


def _to_record(row: Any) -> ApiTokenRecord:
    return ApiTokenRecord(id=row.id, name=row.name, role=Role(row.role), created_at=row.created_at,
                          created_by=row.created_by, last_used_at=row.last_used_at, revoked_at=row.revoked_at)
