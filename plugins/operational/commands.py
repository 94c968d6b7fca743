"""The module's ``crm`` commands, one group per feature."""

import click


def register(cli: click.Group) -> None:
    """Add the module's command groups to ``crm``."""
