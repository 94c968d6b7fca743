"""The core's ``crm`` commands, one module per group.

Modules here import only click and light parts of the core at import time, so that
``crm --help`` stays fast; everything heavy is imported inside the commands.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from core.runtime import Crm

FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)


def get_crm(ctx: click.Context | None = None) -> Crm:
    """The ``Crm`` of this invocation (created once per command line)."""
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    if root.obj is None:
        from core.runtime import Crm

        root.obj = Crm.from_env()
    return root.obj


def open_crm(require_init: bool = True) -> Crm:
    """The ``Crm`` with interrupted module operations repaired; fails if not initialised."""
    from core import modules
    from core.bootstrap import is_initialised

    crm = get_crm()
    if require_init and not is_initialised(crm):
        raise click.ClickException(
            f"the database at {crm.settings.database_url} is not initialised; run `crm init`"
        )
    for line in modules.repair(crm):
        click.echo(f"Repaired an interrupted module operation: {line}", err=True)
    return crm


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON, non-ASCII text kept readable."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def print_table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    """Print rows as a table (plain text when not on a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    Console(soft_wrap=False, width=160).print(table)
