"""A command group whose subcommands are imported only when one of them runs.

``forgeline --help`` lists every command from a table of names, targets and one-line summaries, so answering
it imports no command module (and none of the engine, the stores or SQLAlchemy behind them).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo

from forgeline.startup import bulk_imports

if TYPE_CHECKING:
    from typer import _click as click  # the click that Typer carries and builds its commands on


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives (``"package.module:attribute"``) and the summary ``--help`` shows for it.

    The attribute is a ``typer.Typer`` (a command group) or a function (a single command).
    """

    target: str
    summary: str


class LazyGroup(TyperGroup):
    """A Typer group that imports a subcommand's module the first time the subcommand is resolved."""

    lazy_commands: ClassVar[Mapping[str, LazyCommand]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._loaded: dict[str, click.Command] = {}
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Names in table order, then any command registered eagerly."""
        return [*self.lazy_commands, *(name for name in super().list_commands(ctx)
                                       if name not in self.lazy_commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command itself, or a summary-only stand-in while help is being listed."""
        lazy = self.lazy_commands.get(cmd_name)
        if lazy is None:
            return super().get_command(ctx, cmd_name)
        if self._listing and cmd_name not in self._loaded:
            return TyperCommand(name=cmd_name, help=lazy.summary)
        return self.load(cmd_name)

    def load(self, cmd_name: str) -> click.Command:
        """Import one table entry and turn it into a click command (a group for a ``typer.Typer``)."""
        if cmd_name not in self._loaded:
            lazy = self.lazy_commands[cmd_name]
            module_name, _, attribute = lazy.target.partition(":")
            with bulk_imports():  # the command's module and the stores, the engine and SQLAlchemy behind it
                target = getattr(importlib.import_module(module_name), attribute)
            command: click.Command
            if isinstance(target, typer.Typer):
                command = get_group_from_info(TyperInfo(target, name=cmd_name),
                                              pretty_exceptions_short=True, rich_markup_mode=self.rich_markup_mode,
                                              suggest_commands=self.suggest_commands)
            else:
                command = get_command_from_info(CommandInfo(name=cmd_name, callback=target),
                                                pretty_exceptions_short=True, rich_markup_mode=self.rich_markup_mode)
            self._loaded[cmd_name] = command
        return self._loaded[cmd_name]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Help for the group, listing subcommands from the table without importing them."""
        with self._listing_summaries():
            super().format_help(ctx, formatter)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        """Resolve as usual; a mistyped name is matched against the table's names too."""
        self.commands.update({name: TyperCommand(name=name) for name in self.lazy_commands
                              if name not in self.commands})  # close-match suggestions read self.commands
        try:
            return super().resolve_command(ctx, args)
        finally:
            for name in self.lazy_commands:
                if isinstance(self.commands.get(name), TyperCommand) and name not in self._loaded:
                    del self.commands[name]

    @contextmanager
    def _listing_summaries(self) -> Iterator[None]:
        self._listing = True
        try:
            yield
        finally:
            self._listing = False
