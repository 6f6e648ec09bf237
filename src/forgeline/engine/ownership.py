"""Ownership of an execution: the orchestrator's claim, and the store view that fences every write by its epoch.

An orchestrator claims its execution (``claim_execution``) before it writes anything; the claim's epoch then
goes with every write it makes, through ``FencedStore``. When another orchestrator has claimed the execution
since (this one was paused or cut off and thought lost), the store refuses the write with StaleOwnerError and
this orchestrator stands down without having changed anything.
"""

from __future__ import annotations

import functools
import os
import socket
from typing import Any, cast

from forgeline.store.metadata.protocol import MetadataStore

FENCED_WRITES = frozenset({
    "update_execution", "update_step_run", "add_step_runs", "start_attempt", "finish_attempt",
    "append_events", "record_step_transition", "put_cache_entry", "add_metric_points", "create_model_package",
})
"""The store writes an orchestrator makes about its own execution: each carries the owner's epoch."""


def owner_name() -> str:
    """How this process names itself as an execution's owner: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class FencedStore:
    """A metadata store whose execution writes all carry ``epoch``; reads and other calls pass through."""

    def __init__(self, store: MetadataStore, epoch: int) -> None:
        self._store = store
        self.epoch = epoch

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name in FENCED_WRITES:
            return functools.partial(attribute, epoch=self.epoch)
        return attribute


def fenced(store: MetadataStore, epoch: int) -> MetadataStore:
    """``store`` seen by the owner at ``epoch``: a write refused with StaleOwnerError once another owner claimed."""
    return cast(MetadataStore, FencedStore(store, epoch))
