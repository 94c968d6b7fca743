"""``crm collaborative deliver`` and ``crm collaborative digest``: notification e-mail from cron."""

from __future__ import annotations

import datetime as dt
import sys

import click

from core.commands import FORMAT_OPTION, open_crm, print_json


def _smtp_required(crm: object) -> None:
    from plugins.collaborative.delivery import DeliveryConfigError, require_smtp

    try:
        require_smtp(crm)
    except DeliveryConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _moment(value: str | None) -> dt.datetime | None:
    """``--now`` as an aware datetime (UTC when it names no offset)."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date and time such as 2025-01-31T08:00+07:00",
            param_hint="--now",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@click.command("deliver")
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Mail at most N notifications."
)
@FORMAT_OPTION
def deliver(limit: int | None, fmt: str) -> None:
    """Mail the notifications whose users want e-mail at once.

    Safe to run from several machines at once: each notification is mailed at most once. Exits
    1 when the SMTP server could not be reached (the rest waits for the next run).
    """
    from plugins.collaborative import delivery

    crm = open_crm()
    _smtp_required(crm)
    report = delivery.deliver_pending(crm, limit=limit)
    if fmt == "json":
        print_json(report.as_dict())
    else:
        click.echo(
            f"Mailed {report.sent}, retrying later {report.retrying}, failed {report.failed},"
            f" outcome unknown {report.unknown}, not to be mailed {report.skipped},"
            f" abandoned claims released {report.released}"
        )
    if report.stopped:
        click.echo(f"Stopped: {report.stopped}", err=True)
        sys.exit(1)


@click.command("digest")
@click.option(
    "--now",
    "now",
    default=None,
    metavar="ISO",
    help="Act as if it were this moment (ISO 8601; UTC without an offset).",
)
@FORMAT_OPTION
def digest(now: str | None, fmt: str) -> None:
    """Send today's digest to the users who chose a daily digest (once per user and day).

    Run it every hour from cron: before the digest hour it only records that it ran. Exits 1
    when the SMTP server could not be reached.
    """
    from plugins.collaborative import delivery

    moment = _moment(now)
    crm = open_crm()
    _smtp_required(crm)
    report = delivery.send_digests(crm, now=moment)
    if fmt == "json":
        print_json(report.as_dict())
    elif report.too_early:
        click.echo(f"{report.day}: before the digest hour; nothing sent")
    else:
        click.echo(
            f"{report.day}: sent {report.sent} digests listing {report.items} notifications,"
            f" already sent today {report.already}, retrying later {report.retrying},"
            f" failed {report.failed}, outcome unknown {report.unknown}"
        )
    if report.stopped:
        click.echo(f"Stopped: {report.stopped}", err=True)
        sys.exit(1)


def register(group: click.Group) -> None:
    """Add ``deliver`` and ``digest`` to the ``crm collaborative`` group."""
    group.add_command(deliver)
    group.add_command(digest)
