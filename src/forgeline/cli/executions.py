"""``forgeline executions list|describe|stop|retry|resume``.

What only one command needs (the launcher, the live view, housekeeping) is imported in that command; so are
the server client (pydantic, httpx), the JSON form (pydantic) and the store behind the liveness check
(SQLAlchemy): a plain `executions list` on SQLite imports none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any

import typer

from forgeline.cli.context import CliContext
from forgeline.cli.moments import parse_since
from forgeline.cli.output import JsonOption, print_json
from forgeline.cli.render import executions_table, status_text
from forgeline.errors import ForgelineError
from forgeline.store.metadata.records import ExecutionRecord, ExecutionStatus

app = typer.Typer(help="Inspect and control executions.", no_args_is_help=True)

AutoResumeOption = Annotated[bool, typer.Option(
    "--auto-resume", help="Resume executions whose orchestrator was lost (or set FORGELINE_AUTO_RESUME=1).")]


def orchestrator_notes(ctx: CliContext, records: Sequence[ExecutionRecord], auto_resume: bool) -> dict[str, str]:
    """For each unfinished execution whose orchestrator is lost: how long ago, or that it was resumed just now."""
    settings = replace(ctx.settings, auto_resume=True) if auto_resume else ctx.settings
    notes = {}
    for record in records:
        if record.status.is_terminal:
            continue
        from forgeline.engine.liveness import check_orchestrator  # the engine and the store: only when unfinished
        from forgeline.engine.recovery import resume_if_lost

        if resume_if_lost(ctx.store, record, settings, fork=True):
            notes[record.id] = "orchestrator lost, resumed now"
            continue
        liveness = check_orchestrator(record, settings, ctx.store)
        if liveness.lost:
            notes[record.id] = liveness.note
    return notes


@app.command("list")
def list_executions(
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Only this pipeline.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="Only these statuses, comma-separated: Executing, Stopping, Stopped, Failed, Succeeded."
    )] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only executions created since an ISO date or time (2026-03-01) or an age ago (2h, 3d)."
    )] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    as_json: JsonOption = False,
    auto_resume: AutoResumeOption = False,
) -> None:
    """List executions, newest first."""
    ctx = CliContext()
    if ctx.remote:
        from forgeline.cli import remote

        remote.refuse_option(auto_resume, "--auto-resume", "the server resumes lost executions by its own settings")
        records, notes = remote.list_executions(ctx.remote, pipeline, parse_statuses(status),
                                                parse_since(since) if since else None, limit)
    else:
        records = ctx.list_executions(pipeline, limit=limit, statuses=parse_statuses(status),
                                      since=parse_since(since) if since else None)
        notes = orchestrator_notes(ctx, records, auto_resume)
    if as_json:
        from forgeline.store.metadata.serialise import serialise

        print_json([{**serialise(record), "orchestrator_lost": notes.get(record.id)} for record in records])
        return
    if not records:
        filtered = pipeline or status or since
        ctx.console.print("no executions match these filters" if filtered else "no executions yet")
        return
    ctx.console.print(executions_table(records, ctx.console, notes))


def parse_statuses(text: str | None) -> list[ExecutionStatus] | None:
    """``Failed,Stopped`` as statuses (any case); ForgelineError naming the known ones otherwise."""
    if text is None:
        return None
    known = {status.value.lower(): status for status in ExecutionStatus}
    chosen = [word.strip() for word in text.split(",") if word.strip()]
    unknown = [word for word in chosen if word.lower() not in known]
    if unknown or not chosen:
        raise ForgelineError(f"--status {text!r}: expected one or more of "
                             f"{', '.join(s.value for s in ExecutionStatus)} (comma-separated)")
    return [known[word.lower()] for word in chosen]


@app.command("describe")
def describe(
    execution_id: Annotated[str, typer.Argument(help="Execution id or unique prefix.")],
    as_json: JsonOption = False,
    auto_resume: AutoResumeOption = False,
) -> None:
    """Parameters, steps, attempts, times, outputs and the whole failure reasons of an execution."""
    from forgeline.cli import remote
    from forgeline.store.metadata.serialise import serialise
    from forgeline.store.snapshots import snapshot_summary

    ctx = CliContext()
    if ctx.remote:
        remote.refuse_option(auto_resume, "--auto-resume", "the server resumes lost executions by its own settings")
        found = remote.describe_execution(ctx.remote, execution_id)
        record, note, steps, attempts = found.record, found.orchestrator_lost, found.steps, found.attempts
        snapshot = found.raw.get("code")
    else:
        record = ctx.store.get_execution(execution_id)
        note = orchestrator_notes(ctx, [record], auto_resume).get(record.id)
        steps = ctx.store.list_step_runs(record.id)
        attempts = ctx.store.list_attempts(record.id)
        snapshot = snapshot_summary(ctx.runtime.artifacts, record.code_snapshot)
    if as_json:
        print_json({**serialise(record), "orchestrator_lost": note, "code": snapshot, "steps": steps,
                    "attempts": attempts})
        return
    from forgeline.cli.description import print_description

    print_description(ctx.console, record, steps, attempts, orchestrator_note=note, code=code_line(snapshot))


SHORT_SNAPSHOT_ID = 12
"""Characters of a snapshot id the text output shows (as git shows commits), so the line fits 80 columns."""


def code_line(snapshot: dict[str, Any] | None) -> str:
    """The describe line about the code snapshot."""
    from forgeline.jobs.code_folder import format_size

    if snapshot is None:
        return "run from the working folder (recorded before code snapshots)"
    if "error" in snapshot:
        return f"snapshot {str(snapshot['snapshot'])[:SHORT_SNAPSHOT_ID]}: {snapshot['error']}"
    short = str(snapshot["snapshot"])[:SHORT_SNAPSHOT_ID]  # the whole id is in --json
    return f"snapshot {short} ({snapshot['files']} files, {format_size(snapshot['bytes'])})"


@app.command("stop")
def stop(execution_id: Annotated[str, typer.Argument(help="Execution id or unique prefix.")]) -> None:
    """Stop an execution: running jobs are ended and no new step starts."""
    from forgeline.cli import remote

    ctx = CliContext()
    if ctx.remote:
        record = remote.parse(ExecutionRecord, ctx.remote.post(f"/executions/{execution_id}/stop"))
    else:
        from forgeline.engine.recovery import stop_execution  # the engine's launcher: only when stopping

        record = stop_execution(execution_id, ctx.runtime)
    ctx.console.print(f"execution {record.id}: ", status_text(record.status.value))


@app.command("retry")
def retry(
    execution_id: Annotated[str, typer.Argument(help="Execution id or unique prefix.")],
    detach: Annotated[bool, typer.Option("--detach", help="Return without watching.")] = False,
) -> None:
    """Rerun only the failed, stopped and not-yet-run steps of a finished execution."""
    from forgeline.cli import remote
    from forgeline.cli.watch import finish
    from forgeline.engine.recovery import retry_execution

    ctx = CliContext()
    if ctx.remote:
        retried = remote.parse(ExecutionRecord, ctx.remote.post(f"/executions/{execution_id}/retry"))
        finish(remote.RemoteExecution(ctx.remote, retried.id), ctx, detach)
        return
    finish(retry_execution(execution_id, ctx.runtime, fork=True), ctx, detach)


@app.command("resume")
def resume(
    execution_id: Annotated[str, typer.Argument(help="Execution id or unique prefix.")],
    detach: Annotated[bool, typer.Option("--detach", help="Return without watching.")] = False,
) -> None:
    """Continue an execution whose orchestrator died (steps that had succeeded are not re-run)."""
    from forgeline.cli import remote
    from forgeline.cli.watch import finish
    from forgeline.engine.recovery import resume_execution

    ctx = CliContext()
    if ctx.remote:
        resumed = remote.parse(ExecutionRecord, ctx.remote.post(f"/executions/{execution_id}/resume"))
        finish(remote.RemoteExecution(ctx.remote, resumed.id), ctx, detach)
        return
    finish(resume_execution(execution_id, ctx.runtime, fork=True), ctx, detach)


@app.command("delete")
def delete(
    execution_id: Annotated[str, typer.Argument(help="Execution id or unique prefix.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go and how much it frees.")]
    = False,
) -> None:
    """Delete a finished execution with its job folder, logs, cache entries and the artifacts nothing else uses."""
    from forgeline.cli.gc import housekeeper, print_report

    ctx = CliContext()
    print_report(housekeeper(ctx, dry_run).delete_execution(execution_id), ctx.console)
