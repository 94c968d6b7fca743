"""``crm mailings``: send due mailings (from cron or a timer), list them, re-queue failures."""

from __future__ import annotations

import sys

import click

from core.commands import FORMAT_OPTION, open_crm, print_json, print_table


@click.group()
def mailings() -> None:
    """Mailings: send those whose time has come, list them, re-queue failures."""


@mailings.command("send-due")
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Send at most N mails this run."
)
@FORMAT_OPTION
def send_due(limit: int | None, fmt: str) -> None:
    """Send the queued mails of mailings whose scheduled time has come.

    Safe to run from several machines at once: each mail is sent at most once. Exits 1 when
    the SMTP server could not be reached (the rest stays queued for the next run).
    """
    from plugins.operational import mailings as service

    report = service.send_due(open_crm(), limit=limit)
    if fmt == "json":
        print_json(report.as_dict())
    else:
        click.echo(
            f"Sent {report.sent}, retrying later {report.retrying}, failed {report.failed},"
            f" outcome unknown {report.unknown}, unsubscribed {report.unsubscribed},"
            f" abandoned claims released {report.released}"
        )
        for mailing_id in report.mailings_finished:
            click.echo(f"Mailing {mailing_id} is completely sent")
    if report.stopped:
        click.echo(f"Stopped: {report.stopped}", err=True)
        sys.exit(1)


@mailings.command("list")
@click.option(
    "--status",
    type=click.Choice(["draft", "scheduled", "sending", "sent"]),
    default=None,
    help="Only mailings in this state.",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@FORMAT_OPTION
def list_(status: str | None, limit: int, fmt: str) -> None:
    """The newest mailings with their recipients counted per status."""
    from sqlalchemy import select

    from plugins.operational import mailings as service
    from plugins.operational.models import Mailing

    with open_crm().db.session() as session:
        query = select(Mailing).order_by(Mailing.id.desc()).limit(limit)
        if status:
            query = query.where(Mailing.status == status)
        rows = list(session.scalars(query))
        counts = service.status_counts(session, [m.id for m in rows])
    if fmt == "json":
        print_json([service.mailing_as_dict(m, counts[m.id]) for m in rows])
        return
    names = ["queued", "sent", "failed", "replied", "unsubscribed"]
    print_table(
        ["id", "name", "status", "scheduled_at", *names],
        [[m.id, m.name, m.status, m.scheduled_at, *(counts[m.id][n] for n in names)] for m in rows],
    )


@mailings.command("requeue")
@click.argument("mailing_id", type=int)
@click.option(
    "--unknown",
    is_flag=True,
    help="Also re-queue mails whose outcome is unknown: they may arrive twice.",
)
def requeue(mailing_id: int, unknown: bool) -> None:
    """Put a mailing's failed recipients back in the queue for the next send-due run."""
    from plugins.operational import mailings as service
    from plugins.operational.models import Mailing

    with open_crm().db.write() as session:
        if session.get(Mailing, mailing_id) is None:
            raise click.ClickException(f"no mailing {mailing_id}")
        moved = service.requeue(session, mailing_id, include_unknown=unknown)
    click.echo(f"Re-queued {moved} recipient(s) of mailing {mailing_id}")


def commands() -> list[click.Command]:
    """The command groups this feature adds to ``crm``."""
    return [mailings]
