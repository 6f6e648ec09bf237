"""Forgetting old trigger objects: a row may go once its object is no longer in the watched folder.

A trigger's rows are its memory of what it started: a row forgotten while its object is still listed would
start that object again. So only rows older than the retention whose (key, version) the folder no longer lists
are collected; a folder that cannot be listed now keeps all of its trigger's rows. Pending rows never go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from forgeline.store.metadata.protocol import MetadataStore
from forgeline.triggers.watched_folders import WatchedFolder


@dataclass
class TriggerHistory:
    """How many trigger objects were (or would be) forgotten, and the triggers whose rows all stayed and why."""

    collected: int = 0
    kept: list[tuple[str, str]] = field(default_factory=list)  # (trigger, why its rows stayed)


def collect_trigger_objects(store: MetadataStore, before: datetime, *, dry_run: bool = False,
                            options_by_protocol: Mapping[str, Mapping[str, Any]] | None = None) -> TriggerHistory:
    """Forget every trigger's final rows seen before ``before`` whose object has gone from its folder."""
    history = TriggerHistory()
    for trigger in store.list_triggers():
        old = store.list_old_trigger_objects(trigger.name, before)
        if not old:
            continue
        try:
            listed = {(item.key, item.version)
                      for item in WatchedFolder(trigger.watch, trigger.pattern, options_by_protocol).list()}
        except Exception as error:  # a folder that cannot be listed tells nothing about what has gone
            history.kept.append((trigger.name, f"cannot list {trigger.watch}: {type(error).__name__}: {error}"))
            continue
        gone = [row.id for row in old if (row.key, row.version) not in listed]
        history.collected += len(gone) if dry_run else store.delete_trigger_objects(gone)
    return history
