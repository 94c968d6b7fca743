"""``crm collaborative escalate`` (for cron) and ``crm collaborative handoffs``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from core.commands import FORMAT_OPTION, open_crm, print_json, print_table


def _when(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date and time", param_hint="--now"
        ) from None
    if moment.tzinfo is None:
        raise click.BadParameter("give a time zone (Z or +07:00)", param_hint="--now")
    return moment


def _rows(crm: Any, session: Any, found: list[Any]) -> list[dict[str, Any]]:
    from core.db import utcnow
    from plugins.collaborative import handoffs

    info = handoffs.describe(crm, session, found)
    now = utcnow()
    return [
        {
            "id": h.id,
            "record_type": h.record_type,
            "record_id": h.record_id,
            "record": info["titles"].get((h.record_type, h.record_id)),
            "from_team": info["teams"].get(h.from_team_id),
            "to_team": info["teams"].get(h.to_team_id),
            "status": h.status,
            "deadline": h.deadline.isoformat(),
            "overdue": handoffs.is_overdue(h, now),
            "escalated_at": h.escalated_at.isoformat() if h.escalated_at else None,
            "message": h.message,
        }
        for h in found
    ]


def _print(rows: list[dict[str, Any]], fmt: str, title: str, empty: str) -> None:
    if fmt == "json":
        print_json(rows)
        return
    if not rows:
        click.echo(empty)
        return
    columns = ["id", "record_type", "record_id", "record", "to_team", "status", "deadline"]
    print_table(
        [*columns, "overdue"],
        [[*(r[c] for c in columns), "yes" if r["overdue"] else ""] for r in rows],
        title=title,
    )


@click.command("escalate")
@click.option("--now", "now_text", default=None, metavar="ISO", help="Escalate as of this time.")
@FORMAT_OPTION
def escalate(now_text: str | None, fmt: str) -> None:
    """Tell team leads (and creators) about overdue hand-offs, once each. Run it from cron."""
    from plugins.collaborative import handoffs

    now = _when(now_text)
    crm = open_crm()
    found = handoffs.escalate_overdue(crm, now)
    with crm.db.session() as session:
        rows = _rows(crm, session, found)
    _print(rows, fmt, f"{len(rows)} hand-off(s) escalated", "No hand-off to escalate.")


@click.command("handoffs")
@click.option("--overdue", is_flag=True, help="Only hand-offs waiting past their deadline.")
@FORMAT_OPTION
def handoffs_command(overdue: bool, fmt: str) -> None:
    """List pending hand-offs (all teams), oldest deadline first."""
    from sqlalchemy import select

    from core.db import utcnow
    from plugins.collaborative import handoffs
    from plugins.collaborative.models import Handoff

    crm = open_crm()
    query = select(Handoff).where(Handoff.status == "pending")
    if overdue:
        query = query.where(handoffs.overdue_condition(utcnow()))
    with crm.db.session() as session:
        found = list(session.scalars(query.order_by(Handoff.deadline, Handoff.id)))
        rows = _rows(crm, session, found)
    _print(rows, fmt, f"{len(rows)} pending hand-off(s)", "No pending hand-off.")


def register(group: click.Group) -> None:
    """Add the hand-off commands to ``crm collaborative``."""
    group.add_command(escalate)
    group.add_command(handoffs_command)
