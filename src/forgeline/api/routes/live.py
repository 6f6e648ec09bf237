"""/executions/{id}/events/stream: an execution's step events as Server-Sent Events, for live pages.

Each ``step`` event carries one step event (JSON; its id is the event's cursor, so a reconnecting client with
``Last-Event-ID`` misses none); ``end`` carries the execution's final status once it has ended.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from forgeline.api.context import ApiStore, Viewer
from forgeline.api.routes.logs import KEEPALIVE_SECONDS, paced, sse
from forgeline.errors import ForgelineError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.serialise import dumps

router = APIRouter(prefix="/executions", tags=["executions"])


def step_events(store: MetadataStore, execution_id: str, after: int | None) -> Iterator[str | None]:
    """Events after ``after`` as SSE until the execution has ended and every event is sent (None: wait)."""
    quiet_since = time.monotonic()
    while True:
        ended = store.get_execution(execution_id).status.is_terminal  # read before the events: none is lost
        events = store.events(execution_id, after=after)
        for event in events:
            yield sse("step", dumps(event, indent=None), str(event.id))
            after = event.id
            quiet_since = time.monotonic()
        if ended and not events:
            yield sse("end", store.get_execution(execution_id).status.value)
            return
        if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ": still running\n\n"
        if not events:
            yield None


@router.get("/{execution_id}/events/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
def stream(execution_id: str, store: ApiStore, caller: Viewer,
           after: Annotated[int | None, Query(description="Only events after this cursor.")] = None,
           last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """The execution's step events from ``after`` (or ``Last-Event-ID``) as they happen, then ``end``."""
    record = store.get_execution(execution_id)
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise ForgelineError(f"Last-Event-ID {last_event_id!r}: expected the id of a step event (a number)")
        after = int(last_event_id)
    return StreamingResponse(paced(step_events(store, record.id, after)), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
