"""Hand-offs in the generated UI: the ``handoff`` resource and its list, a "Hand-offs" panel
on the page of every record type that can be handed to a team, and the menu entry."""

from __future__ import annotations

from typing import Any

from sqlalchemy import not_

from core import records
from core.db import utcnow
from core.i18n import N_
from core.ui import Column, Filter, ListView, MenuItem, Resource, Slot

READ = "collaborative.handoff:read"
#: The module's templates, found under its name (``collaborative/<name>``).
TEMPLATES = "collaborative/"
STATUS_LABELS = {
    "pending": N_("Waiting"),
    "accepted": N_("Accepted"),
    "returned": N_("Returned"),
    "cancelled": N_("Cancelled"),
}
YES_NO = [("yes", N_("Yes")), ("no", N_("No"))]


def _overdue_filter(value: str) -> Any:
    from plugins.collaborative.handoffs import overdue_condition

    late = overdue_condition(utcnow())
    return late if value == "yes" else not_(late)


def _overdue(row: Any) -> bool:
    from plugins.collaborative.handoffs import is_overdue

    return is_overdue(row)


def resources() -> list[Any]:
    """The ``handoff`` resource (record rules: ``plugins.collaborative.rules``) and its list."""
    from plugins.collaborative.models import Handoff

    return [
        Resource(
            "handoff",
            Handoff,
            N_("Hand-off"),
            N_("Hand-offs"),
            title_field="message",
            customer_column="customer_id",
            permission_prefix="collaborative.handoff",
        ),
        ListView(
            "handoff",
            [
                Column("record_type", N_("Record type")),
                Column("record_id", N_("Record")),
                Column("to_team_id", N_("To team"), widget="reference"),
                Column("deadline", N_("Deadline"), widget="datetime"),
                Column("status", N_("Status"), choices=list(STATUS_LABELS.items())),
                Column("overdue", N_("Overdue"), widget="checkbox", value=_overdue),
            ],
            filters=[
                Filter("status", N_("Status"), choices=list(STATUS_LABELS.items())),
                Filter("overdue", N_("Overdue"), choices=YES_NO, apply=_overdue_filter),
            ],
        ),
    ]


def _slot(kind_name: str) -> Any:
    def render(ctx: Any, record_id: int) -> str:
        from plugins.collaborative.handoff_pages import slot_body

        return slot_body(ctx, kind_name, record_id)

    return render


def slots(crm: Any) -> list[Slot]:
    """A "Hand-offs" panel (history and a form to hand the record over) on the page of each
    record type that can be handed to a team."""
    from plugins.collaborative.handoffs import handable

    found = []
    for kind in records.record_types(crm).values():
        if kind.resource is None or not handable(kind):
            continue
        found.append(
            Slot(
                f"collaborative.handoffs.{kind.resource}",
                N_("Hand-offs"),
                _slot(kind.name),
                READ,
                resource=kind.resource,
                order=80,
            )
        )
    return found


def menu() -> list[MenuItem]:
    """The hand-offs page."""
    return [MenuItem(N_("Hand-offs"), "/collaborative/handoffs", READ, order=62)]
