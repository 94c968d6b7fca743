"""The conversation panel ("Notes and comments") on the page of every record type that has one.

One :class:`core.ui.Slot` per record type with a UI ``resource``. The panel shows the thread, a
form to write a note or a comment (with the mention autocomplete of ``chatter.js``), reply and
edit forms, and a follow / unfollow button. Its forms post with htmx to
:mod:`plugins.collaborative.chatter_pages`, which answers with the refreshed panel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from core import records as core_records
from core.i18n import N_
from core.ui import Slot
from core.web.ui.context import csrf_token
from plugins.collaborative import followers, messages, records
from plugins.collaborative.config import settings

if TYPE_CHECKING:
    from core.runtime import Crm
    from core.web.ui.context import UIContext

READ = "collaborative.message:read"
CREATE = "collaborative.message:create"
TEMPLATE = "collaborative/chatter.html"
PAGE_SIZE = 20


def panel_id(record_type: str, record_id: int) -> str:
    """The HTML id of a record's panel (forms target it)."""
    return f"chatter-{record_type.replace('.', '-')}-{record_id}"


def panel_url(record_type: str, record_id: int) -> str:
    """Where the panel and its forms live (:mod:`plugins.collaborative.chatter_pages`)."""
    return f"/collaborative/chatter/{record_type}/{record_id}"


def render_panel(
    ctx: UIContext,
    record_type: str,
    record_id: int,
    *,
    before: int | None = None,
    error: str | None = None,
    not_notified: Sequence[str] = (),
    draft: str = "",
) -> Markup:
    """The panel of one record, read in ``ctx.session`` with the user's record rules.

    ``NotFoundError`` when the user may not see the record (the caller answers 404).
    """
    assert ctx.session is not None and ctx.principal is not None
    user = ctx.principal.user
    session = ctx.session
    thread = messages.thread(
        ctx.crm, session, user, record_type, record_id, before_id=before, limit=PAGE_SIZE
    )
    everything = [m for item in thread.items for m in (item.message, *item.replies)]
    bodies = {m.id: messages.render_body(m, thread.names) for m in everything}
    following = followers.follower_ids(session, record_type, record_id)
    return ctx.render(
        TEMPLATE,
        kind=records.kind_of(ctx.crm, record_type),
        record_type=record_type,
        record_id=record_id,
        dom_id=panel_id(record_type, record_id),
        url=panel_url(record_type, record_id),
        thread=thread,
        bodies=bodies,
        names=thread.names,
        user_id=user.id,
        can_write=ctx.can(CREATE),
        may_change={m.id for m in everything if messages.may_change(user, m)},
        following=user.id in following,
        follower_count=len(following),
        csrf=csrf_token(ctx.request),
        error=error,
        not_notified=list(not_notified),
        draft=draft,
        before=before,
        max_length=settings(ctx.crm)["max_message_length"],
    )


def _renderer(record_type: str) -> Callable[[Any, int], Markup]:
    def render(ctx: UIContext, record_id: int) -> Markup:
        return render_panel(ctx, record_type, record_id)

    render.__doc__ = f"The conversation panel of a {record_type} record."
    return render


def slots(crm: Crm) -> list[Slot]:
    """A "Notes and comments" panel on the page of each record type that has a resource."""
    return [
        Slot(
            f"collaborative.chatter.{kind.name}",
            N_("Notes and comments"),
            _renderer(kind.name),
            READ,
            resource=kind.resource,
            order=12,
        )
        for kind in core_records.record_types(crm).values()
        if kind.resource
    ]
