"""How the CLI writes: a console as wide as the terminal (or COLUMNS), tables that fit it, JSON for programs.

Tables never wrap a word: identifiers, statuses and times keep their width, and the free-text columns
(failure reasons, notes) are cut to one line with an ellipsis; `describe` prints the whole text. URIs are
never cut: they go on lines of their own.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

PIPE_WIDTH = 160
"""Width of tables written to a pipe or a file when COLUMNS is not set."""

ELASTIC_FLOOR = 10
"""An elastic column is never cut narrower than this (or its header)."""

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for programs instead of tables.")]


def make_console() -> Console:
    """A console of the terminal's width; COLUMNS when set; PIPE_WIDTH for pipes and files otherwise."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit():
        return Console(width=None)
    return Console(width=PIPE_WIDTH)


def print_json(value: Any) -> None:
    """Write a record, or a list or dict of records, as one JSON document on stdout."""
    from forgeline.store.metadata.serialise import dumps  # pydantic: only for JSON output

    sys.stdout.write(dumps(value) + "\n")


def print_json_lines(values: Iterable[Any]) -> None:
    """Write each record as one line of JSON (JSON Lines), flushing as it goes, for streams."""
    from forgeline.store.metadata.serialise import dumps

    for value in values:
        sys.stdout.write(dumps(value, indent=None) + "\n")
        sys.stdout.flush()


def one_line(text: str | None) -> Text:
    """The first line of a free text, with an ellipsis when more lines follow."""
    lines = (text or "").strip().splitlines()
    if not lines:
        return Text("")
    return Text(lines[0] + (" …" if len(lines) > 1 else ""))


def short_when(moment: datetime | None) -> str:
    """A timestamp in local time without the year (tables), or '-'."""
    return moment.astimezone().strftime("%m-%d %H:%M:%S") if moment else "-"


def make_table(*columns: str, right: Sequence[str] = (), title: str | None = None) -> Table:
    """A compact table (a rule under the header, two spaces between columns); ``right`` columns align right."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1, 0, 0))
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table


def fit(table: Table, console: Console, *elastic: str, droppable: Sequence[str] = ()) -> Table:
    """Make ``table`` fit the console by cutting the ``elastic`` columns (by header) to one line each.

    The other columns keep their natural width; the widest elastic column gives way first, down to
    ELASTIC_FLOOR characters. On a terminal too narrow even then, the ``droppable`` columns go, in order.
    """
    columns = [c for c in table.columns if str(c.header) in elastic]
    for column in table.columns:
        column.no_wrap = True
    for column in columns:
        column.overflow = "ellipsis"
    natural = Measurement.get(console, console.options.update(width=100_000), table).maximum
    excess = natural - console.width
    if excess <= 0:
        return table
    floors_total = sum(min(ELASTIC_FLOOR, _natural_width(c)) for c in columns)
    shrinkable = sum(_natural_width(c) for c in columns) - floors_total
    for header in droppable:
        if excess <= shrinkable:
            break
        for column in [c for c in table.columns if str(c.header) == header]:
            table.columns.remove(column)
        for index, column in enumerate(table.columns):
            column._index = index  # rich renders cells by this position
        excess = Measurement.get(console, console.options.update(width=100_000), table).maximum - console.width
    if excess <= 0 or not columns:
        return table
    widths = {id(c): _natural_width(c) for c in columns}
    floors = {id(c): min(ELASTIC_FLOOR, widths[id(c)]) for c in columns}
    while excess > 0:
        widest = max(columns, key=lambda c: widths[id(c)] - floors[id(c)])
        if widths[id(widest)] <= floors[id(widest)]:
            break
        widths[id(widest)] -= 1
        excess -= 1
    for column in columns:
        column.max_width = widths[id(column)]
    return table


def _natural_width(column: Column) -> int:
    return max((Text(str(column.header)).cell_len, *(_cell_len(cell) for cell in column.cells)))


def _cell_len(cell: Any) -> int:
    text = cell.plain if isinstance(cell, Text) else str(cell)
    return max((Text(line).cell_len for line in text.splitlines()), default=0)


def print_uris(console: Console, rows: Sequence[tuple[str, str]], indent: int = 2, separator: str = ": ") -> None:
    """Print ``label: uri`` lines; a URI too long for the line goes whole on the next line, never cut."""
    for label, uri in rows:
        line = f"{' ' * indent}{label}{separator}{uri}"
        if Text(line).cell_len <= console.width:
            console.print(Text(line), soft_wrap=True)
        else:
            console.print(Text(f"{' ' * indent}{label}{separator.rstrip()}"), soft_wrap=True)
            console.print(Text(f"{' ' * (indent + 2)}{uri}"), soft_wrap=True)


def print_paragraph(console: Console, text: str, indent: int = 0, style: str = "") -> None:
    """Print a free text wrapped at spaces only: a word longer than the line (a path) stays whole."""
    prefix = " " * indent
    for paragraph in text.splitlines() or [""]:
        lines = textwrap.wrap(paragraph, max(20, console.width - indent), break_long_words=False,
                              break_on_hyphens=False) or [""]
        for line in lines:
            console.print(Text(prefix + line, style=style), soft_wrap=True)
