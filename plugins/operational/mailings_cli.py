"""``crm`` commands for mailings."""

import click


def commands() -> list[click.Command]:
    """The command groups this feature adds to ``crm``."""
    return []
