"""``crm activities``: send reminder e-mails for scheduled activities."""

from __future__ import annotations

import click

from core.commands import open_crm


@click.group()
def activities() -> None:
    """Scheduled calls, meetings, e-mails and to-dos."""


@activities.command()
def remind() -> None:
    """E-mail each user the activities whose reminder time has come (each reminder once)."""
    from plugins.operational import reminders

    report = reminders.send_due(open_crm())
    click.echo(f"Reminders sent {report.sent}, failed {report.failed}")


def commands() -> list[click.Command]:
    """The command groups this feature adds to ``crm``."""
    return [activities]
