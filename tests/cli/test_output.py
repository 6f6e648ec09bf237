"""Every list and describe command fits an 80-column terminal without breaking a word: free texts are cut to
one line in tables (``describe`` prints them whole), URIs are never cut (a long one gets a line of its own),
and tables follow COLUMNS when piped."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console
from rich.text import Text

from cli.conftest import LONG_REASON
from cli.test_main import run_in_terminal
from forgeline.cli.moments import parse_age, parse_since
from forgeline.cli.output import fit, make_table, one_line, print_paragraph, print_uris
from forgeline.errors import ForgelineError


def assert_fits(output: str, width: int, whole: list[str] = ()) -> None:
    """Each line fits ``width`` or is a lone path or URI; each of the ``whole`` tokens is on one line, uncut."""
    lines = output.splitlines()
    for line in lines:
        if len(line.rstrip()) > width:
            lone = line.strip()
            assert " " not in lone and "/" in lone, f"line of {len(line.rstrip())} columns:\n{line}\n---\n{output}"
    for token in whole:
        assert any(token in line for line in lines), f"{token!r} is not whole on any line:\n{output}"


def squeezed(text: str) -> str:
    return " ".join(text.split())


def output_uris(reporting, execution_id: str) -> list[str]:
    runs = reporting.project.store().list_step_runs(execution_id)
    return [uri for run in runs for uri in run.outputs.values()]


def test_executions_list_cuts_long_reasons_to_one_line_at_80_columns(reporting, cli):
    listed = cli("executions", "list", cwd=reporting.project.root, columns=80)

    assert listed.returncode == 0, listed
    assert_fits(listed.stdout, 80, [reporting.succeeded, reporting.failed, "Succeeded", "Failed"])
    [row] = [line for line in listed.stdout.splitlines() if reporting.failed in line]
    assert "the input" in row and row.rstrip().endswith("…"), row
    assert "details:" not in listed.stdout  # the reason's second line is not in the table


def test_tables_follow_columns_when_piped(reporting, cli):
    widths = {}
    for columns in (60, 80, 120, 200):
        listed = cli("executions", "list", cwd=reporting.project.root, columns=columns)
        assert listed.returncode == 0, listed
        widths[columns] = max(len(line.rstrip()) for line in listed.stdout.splitlines())
        assert widths[columns] <= columns, listed
        assert reporting.failed in listed.stdout and reporting.succeeded in listed.stdout
    assert widths[60] < widths[80] < widths[120] <= widths[200]
    narrow = cli("executions", "list", cwd=reporting.project.root, columns=80).stdout
    wide = cli("executions", "list", cwd=reporting.project.root, columns=200).stdout
    assert "batch-0042 failed validation" in wide and "batch-0042" not in narrow


def test_describe_holds_the_whole_reason_and_every_uri_at_80_columns(reporting, cli):
    described = cli("executions", "describe", reporting.failed, cwd=reporting.project.root, columns=80)

    assert described.returncode == 0, described
    uris = output_uris(reporting, reporting.failed)
    assert uris and max(len(uri) for uri in uris) > 76  # the test's own folders make them long
    assert_fits(described.stdout, 80, uris + [reporting.failed])
    for line in LONG_REASON.splitlines():
        assert squeezed(line) in squeezed(described.stdout), described
    for step, status in (("Hello", "Succeeded"), ("Train", "Succeeded"), ("Gate", "Succeeded"),
                         ("Refuse", "Failed")):
        assert re.search(rf"^{step}\s+\S+\s+{status}\b", described.stdout, flags=re.MULTILINE), described


def test_describe_on_a_real_80_column_terminal(reporting):
    code, output = run_in_terminal(["executions", "describe", reporting.failed], reporting.project.root, columns=80)

    assert code == 0, output
    assert_fits(output, 80, output_uris(reporting, reporting.failed) + [reporting.failed])
    assert squeezed(LONG_REASON.splitlines()[0]) in squeezed(output)


@pytest.mark.parametrize("args", [
    pytest.param(["pipelines", "list"], id="pipelines-list"),
    pytest.param(["pipelines", "show", "reporting"], id="pipelines-show"),
    pytest.param(["plan", "pipeline.py"], id="plan"),
    pytest.param(["metrics", "{failed}"], id="metrics"),
])
def test_other_read_commands_fit_80_columns(reporting, cli, args):
    args = [arg.format(failed=reporting.failed) for arg in args]
    shown = cli(*args, cwd=reporting.project.root, columns=80)

    assert shown.returncode == 0, shown
    assert_fits(shown.stdout, 80)
    assert shown.stdout.strip()


def test_metrics_table_at_80_columns(reporting, cli):
    shown = cli("metrics", reporting.failed, "Train", cwd=reporting.project.root, columns=80)

    assert shown.returncode == 0, shown
    assert_fits(shown.stdout, 80, ["validation:accuracy"])
    assert re.search(r"Train\s+1\s+2\s+validation:accuracy\s+0\.875", shown.stdout), shown


@pytest.mark.parametrize("args", [
    pytest.param(["models", "groups"], id="groups"),
    pytest.param(["models", "list", "customer-churn"], id="list"),
    pytest.param(["models", "describe", "customer-churn", "2"], id="describe"),
    pytest.param(["models", "compare", "customer-churn", "1", "2"], id="compare"),
    pytest.param(["models", "events"], id="events"),
])
def test_model_registry_commands_fit_80_columns_with_uris_whole(registered, cli, args):
    shown = cli(*args, columns=80)

    assert shown.returncode == 0, shown
    named = [uri for uri in registered.uris if uri in squeezed(shown.stdout)]
    assert_fits(shown.stdout, 80, named)
    if args[1] == "list":
        assert set(registered.uris[:2]) <= set(named), shown
    if args[1] == "describe":
        assert set(registered.uris[1:]) <= set(named), shown
        assert "PendingManualApproval → Approved" in shown.stdout


# -- the building blocks ---------------------------------------------------------------------------------------


def test_fit_cuts_only_the_elastic_column_and_keeps_the_others_whole():
    console = Console(width=50, file=None, force_terminal=False)
    table = make_table("id", "status", "reason")
    table.add_row("0123456789ab", "Succeeded", one_line("a reason far too long for the space that is left\nmore"))
    with console.capture() as captured:
        console.print(fit(table, console, "reason"))
    lines = captured.get().splitlines()
    assert all(len(line.rstrip()) <= 50 for line in lines), lines
    assert "0123456789ab" in lines[-1] and "Succeeded" in lines[-1] and lines[-1].rstrip().endswith("…")
    assert "more" not in captured.get()


def test_one_line_marks_dropped_lines():
    assert one_line("first\nsecond").plain == "first …"
    assert one_line(None).plain == "" and one_line("  only  ").plain == "only"


def test_print_uris_puts_a_long_uri_on_its_own_line_and_a_short_one_beside_its_label():
    console = Console(width=40)
    long_uri = "s3://bucket/" + "x" * 60
    with console.capture() as captured:
        print_uris(console, [("short", "/a/b"), ("long", long_uri)])
    assert captured.get().splitlines() == ["  short: /a/b", "  long:", f"    {long_uri}"]


def test_print_paragraph_wraps_at_spaces_only():
    console = Console(width=30)
    text = "cannot read /a/very/long/path/that/does/not/fit/in/thirty/columns.csv because it is gone"
    with console.capture() as captured:
        print_paragraph(console, text)
    lines = captured.get().splitlines()
    assert "/a/very/long/path/that/does/not/fit/in/thirty/columns.csv" in lines
    assert squeezed(captured.get()) == text
    assert all(len(line) <= 30 or " " not in line for line in lines)
    assert Text(lines[0]).cell_len <= 30


def test_ages_and_moments():
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert parse_age("3d", "--x") == timedelta(days=3) and parse_age("90m", "--x") == timedelta(minutes=90)
    assert parse_since("2h", now=now) == now - timedelta(hours=2)
    assert parse_since("1w", now=now) == now - timedelta(weeks=1)
    assert parse_since("2026-03-01T00:00:00+00:00", now=now) == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_since("2026-03-01", now=now).tzinfo is not None  # a local date is a moment too
    for bad in ("yesterday", "3 days", "-2h", "2y"):
        with pytest.raises(ForgelineError, match="--since"):
            parse_since(bad)
