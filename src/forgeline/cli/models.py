"""``forgeline models groups|list|describe|approve|reject|compare|events``: the model registry."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.render import when
from forgeline.registry import Registry
from forgeline.registry.comparison import flatten_metrics
from forgeline.store.metadata.records import ModelPackageEvent

app = typer.Typer(help="Registered model packages: versions, approvals, lineage and metrics.", no_args_is_help=True)

APPROVAL_STYLE = {"Approved": "green", "Rejected": "red", "PendingManualApproval": "yellow"}
GROUP = Annotated[str, typer.Argument(help="Model package group.")]
VERSION = Annotated[int, typer.Argument(help="Version in the group.")]
NOTE = Annotated[str | None, typer.Option("--note", help="Why (kept in the approval history).")]
BY = Annotated[str | None, typer.Option("--by", help="Who decides (default: the OS user).")]


def _registry(ctx: CliContext) -> Registry:
    return Registry(ctx.settings, store=ctx.store)


def _status(status: str | None) -> Text:
    return Text(status or "-", style=APPROVAL_STYLE.get(status or "", ""))


def _value(value: Any, signed: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:+.6g}" if signed else f"{value:.6g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:+d}" if signed else str(value)
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _short(fingerprint: str | None) -> str:
    return "-" if fingerprint is None else fingerprint[:20]


def _transition(event: ModelPackageEvent) -> Text:
    if event.from_status is None:
        return Text.assemble("registered as ", _status(event.to_status.value))
    return Text.assemble(_status(event.from_status.value), " → ", _status(event.to_status.value))


@app.command("groups")
def groups() -> None:
    """List model package groups with their newest and newest approved versions."""
    ctx = CliContext()
    summaries = _registry(ctx).groups()
    if not summaries:
        ctx.console.print("no model package groups yet: a RegisterModel step creates one")
        return
    table = Table("group", "versions", "latest", "latest approved", "created", "updated")
    for s in summaries:
        table.add_row(s.name, str(s.version_count), str(s.latest_version), _value(s.latest_approved_version),
                      when(s.created_at), when(s.updated_at))
    ctx.console.print(table)


@app.command("list")
def list_packages(
    group: GROUP,
    status: Annotated[str | None, typer.Option("--status", help="Only PendingManualApproval, Approved or "
                                                                "Rejected packages.")] = None,
) -> None:
    """List a group's versions, newest first."""
    ctx = CliContext()
    packages = _registry(ctx).list(group, status)
    if not packages:
        ctx.console.print(f"group {group} has no {status} versions" if status else f"group {group} is empty")
        return
    table = Table("version", "status", "created", "execution", title=f"model package group {group}",
                  title_justify="left")
    table.add_column("model data", overflow="fold")
    table.add_column("description", overflow="fold")
    for p in packages:
        table.add_row(str(p.version), _status(p.approval_status.value), when(p.created_at),
                      p.lineage.get("execution_id") or "-", Text(p.model_data), Text(p.description or ""))
    ctx.console.print(table)


@app.command("describe")
def describe(
    group: GROUP,
    version: VERSION,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Artifacts, inference code, metrics, lineage and approval history of one version."""
    ctx = CliContext()
    described = _registry(ctx).describe(group, version)
    package, console = described.package, ctx.console
    if as_json:
        sys.stdout.write(json.dumps(asdict(described), default=str, indent=2) + "\n")
        return
    console.print(Text.assemble(("model package ", "bold"), package.arn, "  ",
                                _status(package.approval_status.value)))
    console.print(Text(f"model data: {package.model_data}"))
    code = f"{package.entry_point} in {package.code_uri}" if package.code_uri else "none (default handlers)"
    console.print(Text(f"inference code: {code}"))
    console.print(f"content types: {', '.join(package.content_types) or '-'}   "
                  f"response types: {', '.join(package.response_types) or '-'}")
    console.print(f"created: {when(package.created_at)}")
    if package.description:
        console.print(Text(f"description: {package.description}"))
    _print_metrics(ctx, package.metrics, package.lineage.get("metrics_source"))
    _print_lineage(ctx, package.lineage)
    history = Table("when", "change", "by", "note", title="approval history", title_justify="left")
    for event in described.history:
        history.add_row(when(event.created_at), _transition(event), event.actor, Text(event.note or ""))
    console.print(history)


def _print_metrics(ctx: CliContext, metrics: Any, source: dict[str, Any] | None) -> None:
    flat = flatten_metrics(metrics)
    if not flat:
        ctx.console.print("metrics: none")
        return
    table = Table("metric", "value", title="metrics", title_justify="left")
    for name, value in flat.items():
        table.add_row(Text(name), _value(value))
    ctx.console.print(table)
    if source:
        where = (f"property file {source['property_file']} of step {source['step']}" if "property_file" in source
                 else "report")
        ctx.console.print(Text(f"metrics from {where}: {source.get('uri') or '-'}"))


def _print_lineage(ctx: CliContext, lineage: dict[str, Any]) -> None:
    console = ctx.console
    if not lineage:
        console.print("lineage: none")
        return
    console.print(f"lineage: pipeline {lineage.get('pipeline')} v{lineage.get('pipeline_version')}, "
                  f"execution {lineage.get('execution_id')}, step {lineage.get('step')}"
                  + (f", model from step {lineage['model_step']}" if lineage.get("model_step") else ""))
    parameters = lineage.get("parameters") or {}
    console.print(Text("parameters: " + (", ".join(f"{k}={v!r}" for k, v in parameters.items()) or "none")))
    model = lineage.get("model_data") or {}
    console.print(Text(f"model data fingerprint: {_short(model.get('fingerprint'))}"))
    data = Table("data", "fingerprint", "used by", title="trained on", title_justify="left")
    for item in lineage.get("data", []):
        data.add_row(Text(item["uri"]), _short(item.get("fingerprint")), f"{item['step']} ({item['input']})")
    if data.row_count:
        console.print(data)
    steps = Table("step", "kind", "inputs", "outputs", title="upstream steps", title_justify="left")
    for s in lineage.get("steps", []):
        steps.add_row(s["name"], s["kind"], Text("\n".join(f"{i['name']}: {i['uri']}" for i in s["inputs"])),
                      Text("\n".join(f"{o['name']}: {o['uri']}" for o in s["outputs"])))
    if steps.row_count:
        console.print(steps)


def _decide(ctx: CliContext, event: ModelPackageEvent) -> None:
    ctx.console.print(Text.assemble(event.arn, ": ", _transition(event), f" by {event.actor}",
                                    f" ({event.note})" if event.note else ""))


@app.command("approve")
def approve(group: GROUP, version: VERSION, note: NOTE = None, by: BY = None) -> None:
    """Approve a version; the newest Approved version is what ModelPackage.latest_approved resolves to."""
    ctx = CliContext()
    _decide(ctx, _registry(ctx).approve(group, version, note=note, by=by))


@app.command("reject")
def reject(group: GROUP, version: VERSION, note: NOTE = None, by: BY = None) -> None:
    """Reject a version; if it was the latest approved, the previous Approved version takes its place."""
    ctx = CliContext()
    _decide(ctx, _registry(ctx).reject(group, version, note=note, by=by))


@app.command("compare")
def compare(
    group: GROUP,
    a: Annotated[int, typer.Argument(help="First version.")],
    b: Annotated[int, typer.Argument(help="Second version.")],
) -> None:
    """Metrics of two versions side by side, with the difference (second minus first)."""
    ctx = CliContext()
    comparison = _registry(ctx).compare(group, a, b)
    if not comparison.metrics:
        ctx.console.print(f"neither {group}/{a} nor {group}/{b} has metrics")
        return
    table = Table("metric", f"v{a}", f"v{b}", "difference", title=f"{group}: v{a} vs v{b}", title_justify="left")
    for row in comparison.metrics:
        table.add_row(Text(row.name), _value(row.a), _value(row.b), _value(row.difference, signed=True))
    ctx.console.print(table)


@app.command("events")
def events(
    group: Annotated[str | None, typer.Argument(help="Only this group.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Only moves to this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, the newest.")] = 50,
) -> None:
    """Approval-status transitions (registrations included), oldest first."""
    ctx = CliContext()
    found = _registry(ctx).events(group, to_status=status, limit=limit)
    if not found:
        ctx.console.print("no registry events yet")
        return
    table = Table("when", "package", "change", "by", "note")
    for event in found:
        table.add_row(when(event.created_at), event.arn, _transition(event), event.actor, Text(event.note or ""))
    ctx.console.print(table)
