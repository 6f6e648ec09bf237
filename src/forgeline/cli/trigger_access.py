"""Where the schedules and triggers commands read and write: the store directly, or a server (FORGELINE_URL).

Both answer with the same records, so a command prints the same either way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

from forgeline.cli.context import CliContext
from forgeline.engine.loader import load_pipeline
from forgeline.engine.runtime import Runtime
from forgeline.engine.stored import store_pipeline
from forgeline.errors import NotFoundError, ScheduleError, TriggerError
from forgeline.store.metadata.schedule_store import ScheduleRecord, StoredPipelineRef
from forgeline.store.metadata.trigger_store import TriggerRecord
from forgeline.triggers import definitions
from forgeline.triggers.clocks import system_clock
from forgeline.triggers.definitions import ScheduleDescription, ScheduleSpec, TriggerDescription, TriggerSpec
from forgeline.workflow.parameters import resolve_parameter_values
from forgeline.workflow.pipeline import Pipeline


class TriggerAccess(Protocol):
    """What the schedules and triggers commands do, against a store or a server."""

    def create_schedule(self, spec: ScheduleSpec, pipeline_file: str) -> ScheduleRecord:
        """Check everything, store the pipeline file, then the schedule."""
        ...

    def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule."""
        ...

    def describe_schedule(self, name: str) -> ScheduleDescription:
        """A schedule with its latest fires."""
        ...

    def pause_schedule(self, name: str, paused: bool) -> ScheduleRecord:
        """Pause or resume a schedule."""
        ...

    def delete_schedule(self, name: str) -> None:
        """Delete a schedule."""
        ...

    def create_trigger(self, spec: TriggerSpec, pipeline_file: str) -> TriggerRecord:
        """Check everything, store the pipeline file, then the trigger."""
        ...

    def list_triggers(self) -> list[TriggerRecord]:
        """Every trigger."""
        ...

    def describe_trigger(self, name: str) -> TriggerDescription:
        """A trigger with the latest objects it saw."""
        ...

    def pause_trigger(self, name: str, paused: bool) -> TriggerRecord:
        """Pause or resume a trigger."""
        ...

    def delete_trigger(self, name: str) -> None:
        """Delete a trigger."""
        ...


def access(ctx: CliContext) -> TriggerAccess:
    """The server's API when FORGELINE_URL is set, else the store."""
    client = ctx.remote
    if client is not None:
        from forgeline.cli.trigger_remote import RemoteTriggerAccess

        return RemoteTriggerAccess(client, ctx.settings)
    return LocalTriggerAccess(ctx)


def load_checked_pipeline(pipeline_file: str, parameters: dict[str, object]) -> Pipeline:
    """The pipeline in the file, once its parameters accept ``parameters`` (ParameterError otherwise)."""
    pipeline = load_pipeline(pipeline_file)
    resolve_parameter_values(pipeline.parameters, parameters)
    return pipeline


class LocalTriggerAccess:
    """Schedules and triggers in the store these settings name."""

    def __init__(self, ctx: CliContext) -> None:
        """Use the command's settings."""
        self.ctx = ctx

    def create_schedule(self, spec: ScheduleSpec, pipeline_file: str) -> ScheduleRecord:
        """Check everything, store the pipeline file, then the schedule."""
        spec.check()
        pipeline = load_checked_pipeline(pipeline_file, dict(spec.parameters or {}))
        runtime = Runtime.build(self.ctx.settings)
        _refuse_taken(lambda: runtime.store.get_schedule(spec.name),
                      ScheduleError(f"schedule '{spec.name}' already exists; delete it first with "
                                    f"`forgeline schedules delete {spec.name}`"))
        ref = _store(runtime, pipeline, pipeline_file)
        return definitions.create_schedule(runtime.store, spec, ref, system_clock())

    def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule."""
        return self.ctx.store.list_schedules()

    def describe_schedule(self, name: str) -> ScheduleDescription:
        """A schedule with its latest fires."""
        return definitions.describe_schedule(self.ctx.store, name)

    def pause_schedule(self, name: str, paused: bool) -> ScheduleRecord:
        """Pause or resume a schedule."""
        return definitions.set_schedule_paused(self.ctx.store, name, paused, system_clock())

    def delete_schedule(self, name: str) -> None:
        """Delete a schedule."""
        self.ctx.store.delete_schedule(name)

    def create_trigger(self, spec: TriggerSpec, pipeline_file: str) -> TriggerRecord:
        """Check everything, store the pipeline file, then the trigger."""
        spec.check(self.ctx.settings.storage_options)
        pipeline = load_checked_pipeline(pipeline_file, dict(spec.parameters or {}))
        runtime = Runtime.build(self.ctx.settings)
        _refuse_taken(lambda: runtime.store.get_trigger(spec.name),
                      TriggerError(f"trigger '{spec.name}' already exists; delete it first with "
                                   f"`forgeline triggers delete {spec.name}`"))
        ref = _store(runtime, pipeline, pipeline_file)
        return definitions.create_trigger(runtime.store, spec, ref, self.ctx.settings.storage_options)

    def list_triggers(self) -> list[TriggerRecord]:
        """Every trigger."""
        return self.ctx.store.list_triggers()

    def describe_trigger(self, name: str) -> TriggerDescription:
        """A trigger with the latest objects it saw."""
        return definitions.describe_trigger(self.ctx.store, name)

    def pause_trigger(self, name: str, paused: bool) -> TriggerRecord:
        """Pause or resume a trigger."""
        return self.ctx.store.set_trigger_paused(name, paused)

    def delete_trigger(self, name: str) -> None:
        """Delete a trigger."""
        self.ctx.store.delete_trigger(name)


def _store(runtime: Runtime, pipeline: Pipeline, pipeline_file: str) -> StoredPipelineRef:
    work_dir = os.getcwd()
    stored = store_pipeline(runtime, pipeline, work_dir)
    source = os.path.abspath(pipeline_file.partition(":")[0])
    return StoredPipelineRef(stored.name, stored.version, stored.code_snapshot, source, work_dir)


def _refuse_taken(load: Callable[[], object], error: Exception) -> None:
    try:
        load()
    except NotFoundError:
        return
    raise error
