"""``forgeline tokens create|list|revoke``: API tokens, managed against the store directly (no server needed)."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.text import Text

from forgeline.api.auth import issue_token, parse_role
from forgeline.cli.context import CliContext
from forgeline.cli.output import JsonOption, make_table, print_json, short_when
from forgeline.engine.runtime import Runtime

app = typer.Typer(help="API tokens for a forgeline server: roles viewer, operator, approver, admin.",
                  no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who or what uses the token (recorded as the actor of approvals).")],
    role: Annotated[str, typer.Option("--role", help="viewer, operator, approver or admin.")] = "viewer",
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    ctx = CliContext()
    chosen = parse_role(role)
    store = Runtime.build(ctx.settings, create=True).store
    record, token = issue_token(store, name, chosen, created_by=getpass.getuser())
    ctx.console.print(f"token {record.name} ({record.role.value}), shown only now:", highlight=False)
    print(token)


@app.command("list")
def list_tokens(as_json: JsonOption = False) -> None:
    """List tokens with their roles, when they were created, last used and revoked (never the tokens themselves)."""
    ctx = CliContext()
    records = ctx.store.list_tokens()
    if as_json:
        print_json(records)
        return
    if not records:
        ctx.console.print("no tokens yet: `forgeline tokens create NAME --role ROLE`")
        return
    table = make_table("name", "role", "created", "by", "last used", "revoked")
    for record in records:
        table.add_row(Text(record.name), record.role.value, short_when(record.created_at), record.created_by or "-",
                      short_when(record.last_used_at), short_when(record.revoked_at))
    ctx.console.print(table)


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke a token: a server refuses it from its next call on."""
    ctx = CliContext()
    record = ctx.store.revoke_token(name)
    ctx.console.print(f"token {record.name} revoked", highlight=False)
