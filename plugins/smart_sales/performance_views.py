"""What performance adds to the generated UI: the "Sales performance" menu entry (next to
Analytics) and the dashboard widget of revenue credited to alerts this month."""

from __future__ import annotations

from typing import Any

from core.i18n import N_
from core.ui import MenuItem, Widget
from plugins.smart_sales.performance import READ


def resources() -> list[Any]:
    """No generated resources: the performance pages are the module's own."""
    return []


def menu() -> list[MenuItem]:
    """Sales performance, right after Analytics."""
    return [MenuItem(N_("Sales performance"), "/smart_sales/performance", READ, order=61)]


def slots() -> list[Any]:
    """No customer slots."""
    return []


def credited_this_month(ctx: Any) -> int:
    """Revenue credited to the alerts the user may count that converted this month."""
    from plugins.smart_sales.performance import credited_this_month as credited

    return credited(ctx.crm, ctx.session, ctx.principal.user)


def widgets() -> list[Widget]:
    """Revenue credited to alerts this month, for users who may read performance."""
    return [
        Widget(
            "smart_sales.credited_month",
            N_("Revenue credited to alerts this month"),
            credited_this_month,
            kind="money",
            permission=READ,
            order=66,
            note=N_(
                "Revenue of the orders that converted alerts this month (UTC, so far), default "
                "currency; your own alerts, your team's or everyone's, as your scope allows."
            ),
        )
    ]
