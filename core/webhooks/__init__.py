"""Outbound webhooks: events the core and modules declare, signed and sent to registered URLs.

A module declares its event types with the ``webhook_events`` hook (a list of
:class:`WebhookEvent`) and calls :func:`publish` inside the transaction that made the event
happen. ``publish`` writes one delivery row per active endpoint subscribed to the event (a
*transactional outbox*): an event whose transaction commits is sent, one that rolls back never
is. Deliveries go out from ``crm webhooks deliver`` or from the web server's background thread
(``core.webhooks.delivery``), signed as ``core.webhooks.signing`` describes.

Importing this package stays cheap (no SQLAlchemy, no httpx): plugins import
:class:`WebhookEvent` at the top of their modules.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from contextlib import AbstractAsyncContextManager

    from sqlalchemy.orm import Session

    from core.runtime import Crm

log = logging.getLogger("crm.webhooks")

#: An event name: lower-case words joined by dots or underscores (``order.placed``).
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
#: Subscribing to this name means every event.
ALL_EVENTS = "*"


@dataclass(frozen=True)
class WebhookEvent:
    """An event type sent to webhooks: ``name`` (``order.placed``), ``label`` (an English msgid,
    translated where it is shown) and a ``description`` of what happened and of its data."""

    name: str
    label: str
    description: str = ""


#: The core's own event, sent by "send a test event" (admin page, ``crm webhooks ping``).
PING = "ping"


def _ping() -> WebhookEvent:
    from core.i18n import N_

    return WebhookEvent(
        PING,
        N_("Test event"),
        'Sent on request to check an endpoint; data: {"endpoint_id": <id>}.',
    )


def _declared(crm: Crm) -> dict[str, tuple[str, WebhookEvent]]:
    found: dict[str, tuple[str, WebhookEvent]] = {PING: ("core", _ping())}
    for module, event in crm.contributions("webhook_events", crm=crm):
        if not isinstance(event, WebhookEvent) or not EVENT_NAME.match(event.name or ""):
            log.error("module %s declares an invalid webhook event %r; ignored", module, event)
            continue
        if len(event.name) > 100:
            log.error("module %s: webhook event name %r is too long; ignored", module, event.name)
            continue
        owner = found.get(event.name)
        if owner is None:
            found[event.name] = (module, event)
        elif owner != (module, event):
            log.error(
                "module %s declares webhook event %r, already declared by %s; ignored",
                module,
                event.name,
                owner[0],
            )
    return found


def declared_events(crm: Crm) -> dict[str, tuple[str, WebhookEvent]]:
    """Every event the core and the enabled modules declare: name → (module, event).

    When two modules declare one name the first (in dependency order) keeps it; the other
    declaration is logged and ignored.
    """
    declared: dict[str, tuple[str, WebhookEvent]] = crm.memo(
        "webhooks.declared_events", lambda: _declared(crm)
    )
    return declared


def publish(session: Session, crm: Crm, event: str, data: Mapping[str, Any]) -> None:
    """Queue ``event`` with ``data`` for every active endpoint subscribed to it.

    Runs in the caller's transaction: the deliveries exist if and only if it commits. ``data``
    must be JSON-serialisable (money as integer minor units plus a currency code); dates and
    datetimes are sent as ISO 8601 strings. Raises ``ValueError`` for an event no active module
    declares or for data that cannot be sent, whether or not an endpoint listens.
    """
    from core.webhooks.outbox import queue

    queue(session, crm, event, data)


def server_lifespan(crm: Crm) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A lifespan for the web app: the background deliverer runs while the server does
    (when ``webhooks_in_server`` is on), starting with what is already due."""
    import asyncio
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        from core.webhooks import delivery

        started = crm.settings.webhooks_in_server
        if started:
            delivery.start(crm)
        try:
            yield
        finally:
            if started:  # waits for a request under way, off the event loop
                await asyncio.to_thread(delivery.stop, crm)

    return lifespan


__all__ = ["ALL_EVENTS", "PING", "WebhookEvent", "declared_events", "publish"]
