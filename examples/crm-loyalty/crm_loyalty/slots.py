"""Panels on the customer page: the customer's latest notes, and their loyalty points.

The core renders each panel in a request of its own, after checking that the user may see the
customer and holds the panel's permission; if this code fails, only its box shows an error.
"""

from typing import Any

from core.ui import N_, Slot
from crm_loyalty import NAME, notes, points
from crm_loyalty.permissions import POINTS_READ, READ
from crm_loyalty.views import RESOURCE


def slots() -> list[Slot]:
    """The notes panel and the points panel."""
    return [
        Slot(f"{NAME}.notes", N_("Notes"), render_notes, READ, order=60),
        Slot(f"{NAME}.points", N_("Loyalty points"), render_points, POINTS_READ, order=61),
    ]


def render_notes(ctx: Any, customer_id: int) -> str:
    """The customer's five newest notes, with a link to write one (autoescaped)."""
    latest = notes.latest(ctx.session, customer_id, limit=5)
    return ctx.render(f"{NAME}/slot.html", notes=latest, resource=RESOURCE)


def render_points(ctx: Any, customer_id: int) -> str:
    """The customer's points balance and latest earnings (autoescaped)."""
    return ctx.render(
        f"{NAME}/points.html",
        balance=points.balance(ctx.session, customer_id),
        latest=points.history(ctx.session, customer_id),
    )
