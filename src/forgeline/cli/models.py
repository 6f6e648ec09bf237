"""``forgeline models groups|list|describe|approve|reject|compare|events``: the model registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.output import (
    JsonOption,
    fit,
    make_table,
    one_line,
    print_json,
    print_paragraph,
    print_uris,
    short_when,
)
from forgeline.cli.remote import RemoteRegistry, refuse_option
from forgeline.cli.render import when
from forgeline.errors import ReportError
from forgeline.registry import Registry
from forgeline.registry.comparison import flatten_metrics
from forgeline.store.metadata.records import ModelPackageEvent

app = typer.Typer(help="Registered model packages: versions, approvals, lineage and metrics.", no_args_is_help=True)

APPROVAL_STYLE = {"Approved": "green", "Rejected": "red", "PendingManualApproval": "yellow"}
GROUP = Annotated[str, typer.Argument(help="Model package group.")]
VERSION = Annotated[int, typer.Argument(help="Version in the group.")]
NOTE = Annotated[str | None, typer.Option("--note", help="Why (kept in the approval history).")]
BY = Annotated[str | None, typer.Option("--by", help="Who decides (default: the OS user).")]


def _registry(ctx: CliContext) -> Registry | RemoteRegistry:
    """The registry in the store, or on the server FORGELINE_URL names (the same records either way)."""
    return RemoteRegistry(ctx.remote) if ctx.remote else Registry(runtime=ctx.runtime)


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
def groups(as_json: JsonOption = False) -> None:
    """List model package groups with their newest and newest approved versions."""
    ctx = CliContext()
    summaries = _registry(ctx).groups()
    if as_json:
        print_json(summaries)
        return
    if not summaries:
        ctx.console.print("no model package groups yet: a RegisterModel step creates one")
        return
    table = make_table("group", "versions", "latest", "approved", "created", "updated",
                       right=("versions", "latest", "approved"))
    for s in summaries:
        table.add_row(Text(s.name), str(s.version_count), str(s.latest_version), _value(s.latest_approved_version),
                      short_when(s.created_at), short_when(s.updated_at))
    ctx.console.print(fit(table, ctx.console, "group"))


@app.command("list")
def list_packages(
    group: GROUP,
    status: Annotated[str | None, typer.Option("--status", help="Only PendingManualApproval, Approved or "
                                                                "Rejected packages.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List a group's versions, newest first; their model data URIs follow the table, whole."""
    ctx = CliContext()
    packages = _registry(ctx).list(group, status)
    if as_json:
        print_json(packages)
        return
    if not packages:
        ctx.console.print(f"group {group} has no {status} versions" if status else f"group {group} is empty")
        return
    table = make_table("version", "status", "created", "execution", "description", right=("version",),
                       title=f"model package group {group}")
    for p in packages:
        table.add_row(str(p.version), _status(p.approval_status.value), short_when(p.created_at),
                      p.lineage.get("execution_id") or "-", one_line(p.description))
    ctx.console.print(fit(table, ctx.console, "description"))
    ctx.console.print("model data:")
    print_uris(ctx.console, [(f"v{p.version}", p.model_data) for p in packages])


@app.command("describe")
def describe(group: GROUP, version: VERSION, as_json: JsonOption = False) -> None:
    """Artifacts, inference code, metrics, lineage and approval history of one version."""
    ctx = CliContext()
    described = _registry(ctx).describe(group, version)
    package, console = described.package, ctx.console
    if as_json:
        print_json(described)
        return
    console.print(Text.assemble(("model package ", "bold"), package.arn, "  ",
                                _status(package.approval_status.value)), soft_wrap=True)
    print_uris(console, [("model data", package.model_data)], indent=0)
    if package.code_uri:
        print_uris(console, [(f"inference code: {package.entry_point}", package.code_uri)], indent=0, separator=" in ")
    else:
        console.print("inference code: none (default handlers)")
    console.print(f"content types: {', '.join(package.content_types) or '-'}   "
                  f"response types: {', '.join(package.response_types) or '-'}")
    if package.accepts_batches:
        console.print("predict_fn accepts batches: endpoints gather concurrent requests into one call")
    console.print(f"created: {when(package.created_at)}")
    if package.description:
        print_paragraph(console, f"description: {package.description}")
    _print_metrics(ctx, package.metrics, package.lineage.get("metrics_source"))
    _print_lineage(ctx, package.lineage)
    history = make_table("when", "change", "by", "note", title="approval history")
    for event in described.history:
        history.add_row(short_when(event.created_at), _transition(event), event.actor, one_line(event.note))
    console.print(fit(history, console, "note", "by"))


def _print_metrics(ctx: CliContext, metrics: Any, source: dict[str, Any] | None) -> None:
    flat = flatten_metrics(metrics)
    if not flat:
        ctx.console.print("metrics: none")
        return
    table = make_table("metric", "value", title="metrics")
    for name, value in flat.items():
        table.add_row(Text(name), Text(_value(value)))
    ctx.console.print(fit(table, ctx.console, "value", "metric"))
    if source:
        where = (f"property file {source['property_file']} of step {source['step']}" if "property_file" in source
                 else "report")
        print_uris(ctx.console, [(f"metrics from {where}", source.get("uri") or "-")], indent=0)


def _print_lineage(ctx: CliContext, lineage: dict[str, Any]) -> None:
    console = ctx.console
    if not lineage:
        console.print("lineage: none")
        return
    print_paragraph(console, f"lineage: pipeline {lineage.get('pipeline')} v{lineage.get('pipeline_version')}, "
                    f"execution {lineage.get('execution_id')}, step {lineage.get('step')}"
                    + (f", model from step {lineage['model_step']}" if lineage.get("model_step") else ""))
    parameters = lineage.get("parameters") or {}
    print_paragraph(console, "parameters: " + (", ".join(f"{k}={v!r}" for k, v in parameters.items()) or "none"))
    model = lineage.get("model_data") or {}
    console.print(Text(f"model data fingerprint: {_short(model.get('fingerprint'))}"))
    data = lineage.get("data", [])
    if data:
        console.print("trained on:")
        print_uris(console, [(f"{item['step']} ({item['input']}) {_short(item.get('fingerprint'))}", item["uri"])
                             for item in data])
    steps = lineage.get("steps", [])
    if steps:
        console.print("upstream steps:")
    for s in steps:
        console.print(Text(f"  {s['name']} ({s['kind']})"))
        print_uris(console, [(f"in {i['name']}", i["uri"]) for i in s["inputs"]]
                   + [(f"out {o['name']}", o["uri"]) for o in s["outputs"]], indent=4)


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
    data: Annotated[str | None, typer.Option("--data", help="Labelled rows (CSV with a header, or JSON Lines): "
                                             "score both versions on them.")] = None,
    label: Annotated[str | None, typer.Option("--label", help="The label column of --data.")] = None,
    task: Annotated[str, typer.Option("--task", help="binary, multiclass or regression.")] = "binary",
    segment: Annotated[str | None, typer.Option("--segment", help="A column of --data to break metrics "
                                                "down by (e.g. market).")] = None,
    content_type: Annotated[str | None, typer.Option("--content-type", help="What the models read (default: "
                                                     "each package's first content type).")] = None,
    score_field: Annotated[str, typer.Option("--score-field", help="The score's field in JSON answers.")] = "score",
    report: Annotated[Path | None, typer.Option("--report", help="Write the report here (.pdf or .html).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Metrics of two versions side by side, with the difference (second minus first).

    With --data and --label, both versions are scored on the same data and compared there (the second as the
    candidate, the first as its baseline), with bootstrap intervals; --report writes the plotted report.
    """
    ctx = CliContext()
    if data is not None or label is not None or report is not None:
        _compare_on_data(ctx, group, a, b, dict(data=data or "", label=label or "", task=task, segment=segment,
                                                content_type=content_type, score_field=score_field), report, as_json)
        return
    comparison = _registry(ctx).compare(group, a, b)
    if as_json:
        print_json(comparison)
        return
    if not comparison.metrics:
        ctx.console.print(f"neither {group}/{a} nor {group}/{b} has metrics")
        return
    table = make_table("metric", f"v{a}", f"v{b}", "difference", right=(f"v{a}", f"v{b}", "difference"),
                       title=f"{group}: v{a} vs v{b}")
    for row in comparison.metrics:
        table.add_row(Text(row.name), _value(row.a), _value(row.b), _value(row.difference, signed=True))
    ctx.console.print(fit(table, ctx.console, "metric"))


def _compare_on_data(ctx: CliContext, group: str, a: int, b: int, given: dict[str, Any], report: Path | None,
                     as_json: bool) -> None:
    if not given["data"] or not given["label"]:
        raise ReportError("comparing on data needs both --data (labelled rows) and --label (their label column)")
    # imported here: scikit-learn and matplotlib take seconds to import, which no other command should pay
    try:
        from forgeline.reports.comparison import DataComparison, compare_on_data
    except ImportError as exc:
        raise ReportError(f"reports need scikit-learn and matplotlib ({exc}): "
                          "pip install 'forgeline[reports]'") from None

    options = DataComparison(**given)
    refuse_option(ctx.remote is not None, "--data/--report", "models are scored on this machine; unset FORGELINE_URL")
    registry = _registry(ctx)
    first, second = (registry.describe(group, version).package for version in (a, b))
    written = compare_on_data(first, second, options, ctx.settings.home / "model-cache", report,
                              ctx.runtime.artifacts)
    metrics = written.metrics
    if as_json:
        print_json({"group": group, "a": a, "b": b, "report": None if report is None else str(report),
                    "metrics": metrics})
        return
    table = make_table("metric", f"v{a}", f"v{b}", "difference", "95 % interval",
                       right=(f"v{a}", f"v{b}", "difference", "95 % interval"),
                       title=f"{group}: v{b} against v{a} on {metrics['rows']:,} rows of {options.data}")
    for name, value in metrics["candidate"].items():
        change = metrics["difference"][name]
        interval = "-" if change["low"] is None else f"[{change['low']:+.4g}, {change['high']:+.4g}]"
        table.add_row(Text(name), _value(metrics["baseline"][name]), _value(value),
                      _value(change["value"], signed=True), interval)
    ctx.console.print(fit(table, ctx.console, "metric"))
    if report is not None:
        ctx.console.print(Text(f"report: {report}"), soft_wrap=True)


@app.command("events")
def events(
    group: Annotated[str | None, typer.Argument(help="Only this group.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Only moves to this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, the newest.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Approval-status transitions (registrations included), oldest first."""
    ctx = CliContext()
    found = _registry(ctx).events(group, to_status=status, limit=limit)
    if as_json:
        print_json(found)
        return
    if not found:
        ctx.console.print("no registry events yet")
        return
    table = make_table("when", "package", "change", "by", "note")
    for event in found:
        table.add_row(short_when(event.created_at), Text(event.arn), _transition(event), Text(event.actor),
                      one_line(event.note))
    ctx.console.print(fit(table, ctx.console, "note", "by", "package"))
