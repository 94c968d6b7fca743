"""The unified timeline: what happened with customers, gathered from every enabled module.

Modules contribute :class:`TimelineSource` items through the ``timeline_sources`` hook: each
fetches its newest entries for a set of customers, applying its own record rules. :func:`merge`
asks every source the user may read, merges by time and cuts the page, so the customer 360 and
the collaborative module's feed show one history across departments without copying rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.auth import SignedIn
    from core.runtime import Crm

log = logging.getLogger("crm.timeline")


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened: when, what kind, about which customer and record.

    ``title`` is the record's own text (a subject, an order reference); ``label`` an English
    msgid saying what happened ("Order placed"), translated where it is shown.
    """

    at: dt.datetime
    kind: str
    label: str
    title: str
    customer_id: int | None
    url: str | None = None
    record_type: str | None = None
    record_id: int | None = None
    actor: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class TimelineQuery:
    """What a source is asked for: entries about ``customers`` older than ``before``.

    ``customers`` is a SQL selectable of customer ids the user may see (use it with
    ``column.in_(query.customers)``); a source applies its own record rules on top of it.
    """

    crm: Crm
    session: Session
    user: SignedIn
    customers: Any
    before: dt.datetime | None
    limit: int


@dataclass(frozen=True)
class TimelineSource:
    """A kind of timeline entry a module provides; ``fetch(query)`` returns the newest first."""

    kind: str
    label: str
    permission: str
    fetch: Callable[[TimelineQuery], Iterable[TimelineEntry]]


def sources(crm: Crm, user: SignedIn) -> list[TimelineSource]:
    """The timeline sources of enabled modules that ``user`` may read."""
    found = [item for _, item in crm.contributions("timeline_sources", crm=crm)]
    return [s for s in found if s.permission in user.permissions]


def merge(
    crm: Crm,
    session: Session,
    user: SignedIn,
    customers: Any,
    *,
    before: dt.datetime | None = None,
    limit: int = 50,
    kinds: Iterable[str] | None = None,
) -> list[TimelineEntry]:
    """The ``limit`` newest entries of every readable source (of ``kinds``), newest first.

    A source that raises is logged and left out; the others still show.
    """
    wanted = set(kinds) if kinds else None
    query = TimelineQuery(crm, session, user, customers, before, limit)
    entries: list[TimelineEntry] = []
    for source in sources(crm, user):
        if wanted is not None and source.kind not in wanted:
            continue
        try:
            entries.extend(source.fetch(query))
        except Exception:  # one broken module must not take the whole timeline down
            log.exception("timeline source %s failed", source.kind)
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]
