"""``crm smart-sales``: the module's commands, gathered from the modules of each feature.

Heavy imports stay inside the commands so that ``crm --help`` stays fast.
"""

from __future__ import annotations

import click


@click.group("smart-sales")
def group() -> None:
    """Mine rules from orders, raise and review sales alerts."""


def register(cli: click.Group) -> None:
    """Add ``crm smart-sales`` and its subcommands to ``cli``."""
    from plugins.smart_sales import alerts_cli, mining_cli

    for part in (mining_cli, alerts_cli):
        part.register(group)
    cli.add_command(group)
