"""Repository functions for endpoint configurations and status, each in a caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from forgeline.errors import EndpointError, EndpointNotFoundError
from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.endpoint_store import EndpointRecord, EndpointStatus
from forgeline.store.metadata.tables import endpoints


def insert_endpoint(connection: Connection, name: str, config: dict[str, Any]) -> EndpointRecord:
    """Add an endpoint at revision 1, Creating; EndpointError when the name is taken."""
    if connection.execute(select(endpoints.c.name).where(endpoints.c.name == name)).first() is not None:
        raise EndpointError(f"endpoint '{name}' already exists; change it with `forgeline endpoints update {name}`")
    now = utc_now()
    connection.execute(insert(endpoints).values(
        name=name, config=config, revision=1, status=EndpointStatus.CREATING.value, status_message=None,
        deployed={}, created_at=now, updated_at=now,
    ))
    return load_endpoint(connection, name)


def replace_config(connection: Connection, name: str, config: dict[str, Any]) -> EndpointRecord:
    """Store a new configuration as the next revision, Updating."""
    current = load_endpoint(connection, name)
    connection.execute(update(endpoints).where(endpoints.c.name == name).values(
        config=config, revision=current.revision + 1, status=EndpointStatus.UPDATING.value, status_message=None,
        updated_at=utc_now(),
    ))
    return load_endpoint(connection, name)


def set_status(connection: Connection, name: str, revision: int, status: EndpointStatus, message: str | None,
               deployed: dict[str, Any] | None) -> bool:
    """Record a server's outcome for one revision; False when the endpoint is gone or at another revision."""
    values: dict[str, Any] = {"status": EndpointStatus(status).value, "status_message": message}
    if deployed is not None:
        values["deployed"] = deployed
    result = connection.execute(
        update(endpoints).where(endpoints.c.name == name, endpoints.c.revision == revision).values(**values)
    )
    return bool(result.rowcount)


def load_endpoint(connection: Connection, name: str) -> EndpointRecord:
    """One endpoint; EndpointNotFoundError listing the existing ones."""
    row = connection.execute(select(endpoints).where(endpoints.c.name == name)).first()
    if row is not None:
        return _to_record(row)
    names = list(connection.execute(select(endpoints.c.name).order_by(endpoints.c.name)).scalars())
    known = f"endpoints: {', '.join(names)}" if names else "none yet: create one with `forgeline endpoints create`"
    raise EndpointNotFoundError(f"no endpoint '{name}' ({known})")


def list_endpoints(connection: Connection) -> list[EndpointRecord]:
    """Every endpoint, by name."""
    return [_to_record(row) for row in connection.execute(select(endpoints).order_by(endpoints.c.name))]


def delete_endpoint(connection: Connection, name: str) -> None:
    """Remove one endpoint."""
    load_endpoint(connection, name)
    connection.execute(delete(endpoints).where(endpoints.c.name == name))


def _to_record(row: Any) -> EndpointRecord:
    return EndpointRecord(
        name=row.name, config=dict(row.config), revision=row.revision, status=EndpointStatus(row.status),
        created_at=row.created_at, updated_at=row.updated_at, status_message=row.status_message,
        deployed=dict(row.deployed or {}),
    )
