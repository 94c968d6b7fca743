"""The module's ``crm`` commands, one group per feature."""

import click


def register(cli: click.Group) -> None:
    """Add the module's command groups to ``crm``."""
    from plugins.operational import (
        activities_cli,
        mailings_cli,
        orders_cli,
        pipeline_cli,
        tickets_cli,
    )

    for module in (orders_cli, pipeline_cli, activities_cli, mailings_cli, tickets_cli):
        for command in module.commands():
            cli.add_command(command)
