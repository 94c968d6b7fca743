"""The feed in the navigation, and the merged cross-department timeline on the customer 360.

The 360 panel asks ``core.timeline.merge`` for one customer: notes and hand-offs of this
module and, with the other modules enabled, their interactions, orders, tickets, deals and
alerts, each source applying its own record rules.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from markupsafe import Markup

from core import timeline
from core.i18n import N_
from core.ui import MenuItem, Slot
from plugins.collaborative import feed

if TYPE_CHECKING:
    from core.web.ui.context import UIContext

READ = "collaborative.feed:read"
SLOT_ID = "collaborative.timeline"
SLOT_PAGE = 20


def menu() -> list[MenuItem]:
    """The feed in the navigation."""
    return [MenuItem(N_("Feed"), "/collaborative/feed", READ, order=6)]


def rows(ctx: UIContext, entries: list[timeline.TimelineEntry]) -> list[dict[str, Any]]:
    """Entries ready to show: their label translated to the page's language."""
    shown = []
    for entry in entries:
        label = entry.label
        shown.append(
            {
                "at": entry.at,
                "kind": entry.kind,
                "label": ctx.gettext(label),
                "title": entry.title,
                "url": entry.url,
                "actor": entry.actor,
                "detail": entry.detail,
                "customer_id": entry.customer_id,
            }
        )
    return shown


def parse_time(value: str | None) -> dt.datetime | None:
    """An ISO time from a query string (a naive one is read as UTC); ``None`` when absent or
    not a time."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _timeline_slot(ctx: UIContext, customer_id: int) -> Markup:
    assert ctx.session is not None and ctx.principal is not None
    before = parse_time(ctx.request.query_params.get("before"))
    page = feed.feed(
        ctx.crm,
        ctx.session,
        ctx.principal.user,
        before=before,
        limit=SLOT_PAGE,
        customer_id=customer_id,
    )
    more = None
    if page.next_before is not None:
        query = urlencode({"before": page.next_before.isoformat()})
        more = f"/ui/slots/{SLOT_ID}/{customer_id}?{query}"
    return ctx.render(
        "collaborative/timeline_slot.html",
        entries=rows(ctx, page.items),
        more=more,
        newest=f"/ui/slots/{SLOT_ID}/{customer_id}" if before is not None else None,
    )


def slots(crm: Any) -> list[Slot]:
    """The merged cross-department timeline on the customer 360."""
    return [Slot(SLOT_ID, N_("Across departments"), _timeline_slot, READ, order=14)]
