"""``crm collaborative``: the module's commands, gathered from the modules of each feature.

Heavy imports stay inside the commands so that ``crm --help`` stays fast.
"""

from __future__ import annotations

import click


@click.group("collaborative")
def group() -> None:
    """Departments, notifications, hand-offs and partners."""


def register(cli: click.Group) -> None:
    """Add ``crm collaborative`` and its subcommands to ``cli``."""
    from plugins.collaborative import delivery_cli, handoffs_cli, partners_cli, teams_cli

    for part in (delivery_cli, teams_cli, handoffs_cli, partners_cli):
        part.register(group)
    cli.add_command(group)
