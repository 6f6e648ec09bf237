"""EndpointStore: the part of the metadata store real-time serving uses (endpoint configurations and status)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class EndpointStatus(StrEnum):
    """Where an endpoint stands: its newest configuration waits for a server, serves, or could not be served."""

    CREATING = "Creating"
    UPDATING = "Updating"
    IN_SERVICE = "InService"
    FAILED = "Failed"


@dataclass(frozen=True)
class EndpointRecord:
    """An endpoint's configuration (plain JSON), its revision, and what a server last made of it."""

    name: str
    config: dict[str, Any]
    revision: int  # 1 when created, one more on every configuration change
    status: EndpointStatus
    created_at: datetime
    updated_at: datetime
    status_message: str | None = None
    deployed: dict[str, Any] = field(default_factory=dict)  # what the server serves, e.g. resolved versions


class EndpointStore(Protocol):
    """Endpoint configurations by name; each call is one transaction."""

    def create_endpoint(self, name: str, config: dict[str, Any]) -> EndpointRecord:
        """Store a new endpoint (revision 1, Creating); EndpointError when the name is taken."""
        ...

    def update_endpoint(self, name: str, config: dict[str, Any]) -> EndpointRecord:
        """Replace the configuration, count the revision up and mark it Updating; EndpointNotFoundError."""
        ...

    def set_endpoint_status(self, name: str, revision: int, status: EndpointStatus, *, message: str | None = None,
                            deployed: dict[str, Any] | None = None) -> bool:
        """Record what a server made of ``revision``; False (nothing changes) when the endpoint moved on or went."""
        ...

    def get_endpoint(self, name: str) -> EndpointRecord:
        """One endpoint; EndpointNotFoundError names the ones that exist."""
        ...

    def list_endpoints(self) -> list[EndpointRecord]:
        """Every endpoint, by name."""
        ...

    def delete_endpoint(self, name: str) -> None:
        """Remove an endpoint; EndpointNotFoundError when there is none by that name."""
        ...
