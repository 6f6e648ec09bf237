"""The schedules and triggers commands against a server (FORGELINE_URL): the same records, through /api/v1."""

from __future__ import annotations

import os
from typing import Any

from forgeline.api.code_archive import pack_code
from forgeline.cli.remote import RemoteClient, parse, parse_list
from forgeline.config import Settings
from forgeline.engine.code_snapshot import code_rules_of, pipeline_code_files
from forgeline.errors import ForgelineError, NotFoundError
from forgeline.store.artifacts import is_local
from forgeline.store.metadata.schedule_store import ScheduleRecord
from forgeline.store.metadata.trigger_store import TriggerRecord
from forgeline.triggers.definitions import ScheduleDescription, ScheduleSpec, TriggerDescription, TriggerSpec
from forgeline.workflow.pipeline import Pipeline


class RemoteTriggerAccess:
    """Schedules and triggers on a server; creating one stores the local pipeline file there first."""

    def __init__(self, client: RemoteClient, settings: Settings) -> None:
        """Talk to the server of ``client``; ``settings`` give the code folder rules for the upload."""
        self.client = client
        self.settings = settings

    def create_schedule(self, spec: ScheduleSpec, pipeline_file: str) -> ScheduleRecord:
        """Check locally, store the pipeline on the server, then create the schedule there."""
        from forgeline.cli.trigger_access import load_checked_pipeline

        spec.check()
        pipeline = load_checked_pipeline(pipeline_file, dict(spec.parameters or {}))
        self._refuse_taken(f"/schedules/{spec.name}", f"schedule '{spec.name}' already exists; delete it first "
                                                      f"with `forgeline schedules delete {spec.name}`")
        body = {"name": spec.name, "cron": spec.cron, "timezone": spec.timezone,
                "parameters": dict(spec.parameters or {}), "catchup": spec.catchup, "overlap": spec.overlap,
                **self._store(pipeline)}
        return parse(ScheduleRecord, self.client.post("/schedules", body))

    def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule."""
        return parse_list(ScheduleRecord, self.client.get("/schedules"))

    def describe_schedule(self, name: str) -> ScheduleDescription:
        """A schedule with its latest fires."""
        return parse(ScheduleDescription, self.client.get(f"/schedules/{name}"))

    def pause_schedule(self, name: str, paused: bool) -> ScheduleRecord:
        """Pause or resume a schedule."""
        return parse(ScheduleRecord, self.client.post(f"/schedules/{name}/{'pause' if paused else 'resume'}"))

    def delete_schedule(self, name: str) -> None:
        """Delete a schedule."""
        self.client.delete(f"/schedules/{name}")

    def create_trigger(self, spec: TriggerSpec, pipeline_file: str) -> TriggerRecord:
        """Check locally, store the pipeline on the server, then create the trigger there (it checks the URL)."""
        from forgeline.cli.trigger_access import load_checked_pipeline

        pipeline = load_checked_pipeline(pipeline_file, dict(spec.parameters or {}))
        self._refuse_taken(f"/triggers/{spec.name}", f"trigger '{spec.name}' already exists; delete it first "
                                                     f"with `forgeline triggers delete {spec.name}`")
        # A relative folder is relative to this command's folder (the server runs elsewhere).
        watch = os.path.abspath(os.path.expanduser(spec.watch)) if is_local(spec.watch) else spec.watch
        body = {"name": spec.name, "watch": watch, "pattern": spec.pattern, "poll_seconds": spec.poll_seconds,
                "parameters": dict(spec.parameters or {}), **self._store(pipeline)}
        return parse(TriggerRecord, self.client.post("/triggers", body))

    def list_triggers(self) -> list[TriggerRecord]:
        """Every trigger."""
        return parse_list(TriggerRecord, self.client.get("/triggers"))

    def describe_trigger(self, name: str) -> TriggerDescription:
        """A trigger with the latest objects it saw."""
        return parse(TriggerDescription, self.client.get(f"/triggers/{name}"))

    def pause_trigger(self, name: str, paused: bool) -> TriggerRecord:
        """Pause or resume a trigger."""
        return parse(TriggerRecord, self.client.post(f"/triggers/{name}/{'pause' if paused else 'resume'}"))

    def delete_trigger(self, name: str) -> None:
        """Delete a trigger."""
        self.client.delete(f"/triggers/{name}")

    def _store(self, pipeline: Pipeline) -> dict[str, Any]:
        work_dir = os.getcwd()
        files = pipeline_code_files(pipeline, work_dir, code_rules_of(self.settings))
        stored = self.client.post("/pipelines", {"definition": pipeline.to_request(), "code": pack_code(files)})
        return {"pipeline": stored["name"], "version": stored["version"], "work_dir": work_dir}

    def _refuse_taken(self, path: str, message: str) -> None:
        try:
            self.client.get(path, limit=1)
        except NotFoundError:
            return
        raise ForgelineError(message)
