"""``crm tickets`` commands: SLA breaches."""

from __future__ import annotations

from typing import Any

import click

from core.commands import FORMAT_OPTION, open_crm, print_json, print_table


@click.group()
def tickets() -> None:
    """Service tickets and their SLA."""


def _row(ticket: Any, now: Any) -> dict[str, Any]:
    from plugins.operational import tickets as service

    return {
        "id": ticket.id,
        "customer_id": ticket.customer_id,
        "subject": ticket.subject,
        "priority": ticket.priority,
        "status": ticket.status,
        "assignee_id": ticket.assignee_id,
        "breaches": service.breaches(ticket, now),
        "first_response_due": _iso(ticket.first_response_due),
        "first_responded_at": _iso(ticket.first_responded_at),
        "resolution_due": _iso(ticket.resolution_due),
        "resolved_at": _iso(ticket.resolved_at),
    }


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


@tickets.command("check-sla")
@click.option(
    "--open-only", is_flag=True, help="Only tickets not resolved or closed (overdue right now)."
)
@FORMAT_OPTION
def check_sla(open_only: bool, fmt: str) -> None:
    """List tickets whose first response or resolution is overdue, or was late.

    Pending tickets keep their clock. Exits 0 whether or not there are breaches.
    """
    from core.db import utcnow
    from plugins.operational import tickets as service

    crm = open_crm()
    now = utcnow()
    with crm.db.session() as session:
        rows = [_row(t, now) for t in service.breached(session, now, open_only=open_only)]
    if fmt == "json":
        print_json(rows)
        return
    if not rows:
        click.echo("No SLA breaches.")
        return
    columns = ["id", "priority", "status", "breaches", "first_response_due", "resolution_due"]
    print_table(
        [*columns, "subject"],
        [[*(_cell(r[c]) for c in columns), r["subject"]] for r in rows],
        title=f"{len(rows)} ticket(s) breaching their SLA",
    )


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, str) and len(value) > 16 and value[10] == "T":
        return value[:16].replace("T", " ")  # ISO time to the minute, in UTC
    return value


def commands() -> list[click.Command]:
    """The command groups this feature adds to ``crm``."""
    return [tickets]
