"""What the smart-selling module offers modules that work across records: the alert as a record
type (notified, discussed, followed) and a timeline source of alerts raised and converted.

Nothing here imports another module; the collaborative module finds these through the core's
``record_types``, ``timeline_sources`` and ``record_event`` hooks. The timeline applies the same
visibility as the inbox: the read permission and the customer's record rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.i18n import N_, format_money
from core.records import RecordType
from core.timeline import TimelineEntry, TimelineQuery, TimelineSource
from plugins.smart_sales.models import Alert

if TYPE_CHECKING:
    from collections.abc import Iterable

ALERT = "smart_sales.alert"
ALERT_URL = "/smart_sales/alerts/{id}"
RAISED = N_("Sales alert raised")
CONVERTED = N_("Sales alert converted")


def record_types() -> list[RecordType]:
    """The alert: its page is the inbox's alert page; it follows its customer's record rule."""
    return [
        RecordType(
            ALERT,
            N_("Sales alert"),
            Alert,
            ALERT_URL,
            title="title",
            customer_column="customer_id",
            resource="alert",
        )
    ]


def _alerts(query: TimelineQuery, at: Any, *conditions: Any) -> list[Alert]:
    from plugins.smart_sales.alerts import visible_condition

    stmt = select(Alert).where(Alert.customer_id.in_(query.customers), *conditions)
    if query.before is not None:
        stmt = stmt.where(at < query.before)
    rule = visible_condition(query.crm, query.user)
    if rule is not None:
        stmt = stmt.where(rule)
    stmt = stmt.order_by(at.desc(), Alert.id.desc()).limit(query.limit)
    return list(query.session.scalars(stmt))


def _alert_entries(query: TimelineQuery) -> list[TimelineEntry]:
    """Alerts raised (with their reason) and converted (with the credit), newest first."""
    from plugins.smart_sales.alerts import describe, headline, products_for

    raised = _alerts(query, Alert.raised_at)
    converted = _alerts(query, Alert.closed_at, Alert.state == "converted")
    products = products_for(query.session, [*raised, *converted])
    entries = [
        TimelineEntry(
            at=alert.raised_at,
            kind="alert",
            label=RAISED,
            title=headline(alert, products),
            customer_id=alert.customer_id,
            url=ALERT_URL.format(id=alert.id),
            record_type=ALERT,
            record_id=alert.id,
            detail=describe(alert, products)[:200],
        )
        for alert in raised
    ]
    entries += [
        TimelineEntry(
            at=alert.closed_at,
            kind="alert",
            label=CONVERTED,
            title=headline(alert, products),
            customer_id=alert.customer_id,
            url=ALERT_URL.format(id=alert.id),
            record_type=ALERT,
            record_id=alert.id,
            detail=format_money(alert.credited_minor, alert.currency, query.user.language),
        )
        for alert in converted
        if alert.closed_at is not None
    ]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[: query.limit]


def timeline_sources() -> Iterable[TimelineSource]:
    """Sales alerts raised and converted, for holders of ``smart_sales.alert:read``."""
    return [TimelineSource("alert", N_("Sales alerts"), "smart_sales.alert:read", _alert_entries)]
