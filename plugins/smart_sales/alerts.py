"""Sales alerts: who sees which, their lifecycle, how they read, and how they are raised.

**Visibility.** A user sees an alert when they hold ``smart_sales.alert:read`` and may see its
customer (the customer's record rule). The inbox "mine" holds the visible alerts the user owns;
"team" (``smart_sales.alert:team``) those whose owner the user's scope covers.

**Lifecycle.** Raised as ``new``; opening it makes it ``seen``; acting makes it ``acted``;
dismissing (with a reason) closes it as ``dismissed``; past ``expires_at`` :func:`expire` closes
it as ``expired``; an order of the customer with the suggested product (any order for churn),
in the alert's currency and placed within ``conversion_days`` after it was raised, closes it as
``converted`` and credits the product's line amounts (for churn, what the offers left of the
order's total) — only the latest alert raised before the order converts, open or expired but
not dismissed, and each converts once (:func:`credit_order`). ``open_key`` is set while an
alert is open and is unique, so a customer never has two open alerts for one product (or two
churn alerts).

**Raising** (:func:`generate`). Cross-sell from the current run's unmuted rules X → Y: a
customer who bought every product of X and none of Y (in orders that are not cancelled or
returned) gets one alert per product of Y, with the rule's confidence as probability; when
several rules offer the same product, the one with the highest expected value wins. Up-sell:
a product the customer bought has an ``upgrade_to`` product, or a cheaper-to-dearer next tier
in its category, that the customer never bought. Churn: a customer of a value tier at least
``churn_min_tier`` whose probability alive fell under ``churn_alive_percent`` or whose next
order is overdue by ``churn_overdue_percent`` of their usual gap. An offer's expected value is
probability x margin (price - cost, or the default margin share of the price); churn's is the
value at risk (lifetime value, or the margin when unknown). Raising skips a customer and
product that has an open alert or one dismissed within ``snooze_days``. Generated alerts are
written in bulk (the audit log records what people do with them, not each machine insert).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Select,
    case,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm.exc import StaleDataError

from core import i18n, records
from core.db import utcnow
from core.i18n import N_
from plugins.smart_sales import webhooks
from plugins.smart_sales.models import (
    ALERT_KINDS,
    CLOSED_STATES,
    DISMISS_REASONS,
    OPEN_STATES,
    Alert,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.auth import SignedIn
    from core.runtime import Crm
    from plugins.operational.models import Product

log = logging.getLogger("crm.smart_sales.alerts")

RECORD_TYPE = "smart_sales.alert"
READ = "smart_sales.alert:read"
UPDATE = "smart_sales.alert:update"
TEAM = "smart_sales.alert:team"
SCOPES = ("mine", "team")
SORTS = ("priority", "value", "recent")
OFFER_KINDS = ("cross_sell", "up_sell")
#: Tier rank for the inbox order: A first, alerts without a tier last.
TIER_RANK = {"A": 0, "B": 1, "C": 2}
#: Alerts announced to each owner per generation call, by expected value.
ANNOUNCED_PER_OWNER = 5
NOTE_LIMIT = 2000
#: Customers who must have bought a product before its upgrade rate is measured.
MIN_UPGRADE_SAMPLE = 20

RAISED_LABEL = N_("Sales alert")
CONVERTED_LABEL = N_("Sales alert converted")


class AlertError(ValueError):
    """A transition the alert's state does not allow, or a bad value; ``field`` names it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class StaleAlert(Exception):
    """The client acted on a version of the alert that is no longer current."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the alert changed: it is at version {current}")
        self.current = current


# --- who sees what ---------------------------------------------------------------------------


def visible_condition(crm: Crm | None, user: SignedIn) -> ColumnElement[bool] | None:
    """The condition on alerts ``user`` may see (``None``: all of them).

    Without ``smart_sales.alert:read`` nothing; otherwise the alerts of the customers the
    user may see.
    """
    if READ not in user.permissions:
        return false()
    return records.visible(crm, user, RECORD_TYPE, customer_column=Alert.customer_id)


def _where(query: Select[Any], *conditions: ColumnElement[bool] | None) -> Select[Any]:
    wanted = [c for c in conditions if c is not None]
    return query.where(*wanted) if wanted else query


def tier_rank() -> ColumnElement[int]:
    """SQL ranking value tiers A, B, C, then alerts without a tier."""
    return case(
        *((Alert.value_tier == tier, rank) for tier, rank in TIER_RANK.items()),
        else_=len(TIER_RANK),
    )


def inbox_query(
    crm: Crm | None,
    user: SignedIn,
    *,
    scope: str = "mine",
    states: Iterable[str] = OPEN_STATES,
    kind: str | None = None,
    sort: str = "priority",
) -> Select[Any]:
    """The ``SELECT`` of the alerts of ``user``'s inbox (``scope`` ``mine`` or ``team``).

    ``team`` needs ``smart_sales.alert:team`` (``AlertError`` otherwise) and holds the alerts
    whose owner the user's scope covers (every owner for scope ``all``). ``sort``: ``priority``
    (tier A first, then expected value, then id), ``value`` (expected value) or ``recent``.
    """
    if scope not in SCOPES:
        raise AlertError(f"scope must be one of {', '.join(SCOPES)}", "scope")
    if sort not in SORTS:
        raise AlertError(f"sort must be one of {', '.join(SORTS)}", "sort")
    wanted_states = list(states)
    if unknown := [s for s in wanted_states if s not in (*OPEN_STATES, *CLOSED_STATES)]:
        raise AlertError(f"unknown state {unknown[0]!r}", "state")
    if kind is not None and kind not in ALERT_KINDS:
        raise AlertError(f"kind must be one of {', '.join(ALERT_KINDS)}", "kind")
    if scope == "team":
        if TEAM not in user.permissions:
            raise AlertError("seeing the team's alerts needs smart_sales.alert:team", "scope")
        owners = records.owner_condition(user, Alert.owner_id)
    else:
        owners = Alert.owner_id == user.id
    query = _where(
        select(Alert),
        visible_condition(crm, user),
        owners,
        Alert.state.in_(wanted_states),
        None if kind is None else Alert.kind == kind,
    )
    if sort == "priority":
        return query.order_by(tier_rank(), Alert.expected_value_minor.desc(), Alert.id)
    if sort == "value":
        return query.order_by(Alert.expected_value_minor.desc(), Alert.id)
    return query.order_by(Alert.raised_at.desc(), Alert.id.desc())


def open_count(
    crm: Crm | None, session: Session, user: SignedIn, states: Sequence[str] = OPEN_STATES
) -> int:
    """How many alerts in ``states`` (open ones by default) the user owns and may see."""
    query = inbox_query(crm, user, states=states)
    inner = query.order_by(None).with_only_columns(Alert.id).subquery()
    return session.scalar(select(func.count()).select_from(inner)) or 0


def get_visible(crm: Crm | None, session: Session, user: SignedIn, alert_id: int) -> Alert | None:
    """Alert ``alert_id`` if it exists and ``user`` may see it, else ``None``."""
    query = _where(select(Alert).where(Alert.id == alert_id), visible_condition(crm, user))
    return session.scalars(query).first()


# --- lifecycle -------------------------------------------------------------------------------


def _check_version(alert: Alert, version: int | None) -> None:
    if version is not None and version != alert.version:
        raise StaleAlert(alert.version)


def _flush(session: Session, alert: Alert) -> None:
    """Write the change; a concurrent change of the same alert is a ``StaleAlert`` carrying
    the version now stored (read apart: the failed flush leaves the session unusable)."""
    alert_id = alert.id
    try:
        session.flush()
    except StaleDataError:
        with session.get_bind().engine.connect() as connection:
            current = connection.scalar(select(Alert.version).where(Alert.id == alert_id))
        raise StaleAlert(current or 0) from None


def mark_seen(session: Session, alert: Alert, user: SignedIn) -> bool:
    """Mark a new alert seen (opening it); ``True`` when it changed."""
    if alert.state != "new":
        return False
    alert.state = "seen"
    alert.seen_at = utcnow()
    _flush(session, alert)
    return True


def act(session: Session, alert: Alert, user: SignedIn, version: int | None = None) -> Alert:
    """Record that ``user`` acted on the alert (new or seen -> acted).

    Acting again on an acted alert changes nothing; a closed alert raises ``AlertError``, a
    ``version`` that is not the current one ``StaleAlert``.
    """
    _check_version(alert, version)
    if alert.state == "acted":
        return alert
    if alert.state not in OPEN_STATES:
        raise AlertError(f"the alert is {alert.state}: it can no longer be acted on", "state")
    now = utcnow()
    alert.state = "acted"
    alert.seen_at = alert.seen_at or now
    alert.acted_at = now
    alert.acted_by = user.id
    _flush(session, alert)
    return alert


def dismiss(
    session: Session,
    alert: Alert,
    user: SignedIn,
    reason: str,
    note: str | None = None,
    version: int | None = None,
) -> Alert:
    """Close an open alert as dismissed, with ``reason`` (one of ``DISMISS_REASONS``).

    The same customer and product is not raised again for ``snooze_days``. ``AlertError``
    names ``reason`` or ``note`` when bad, or ``state`` when the alert is closed.
    """
    _check_version(alert, version)
    if reason not in DISMISS_REASONS:
        raise AlertError(f"reason must be one of {', '.join(DISMISS_REASONS)}", "reason")
    cleaned = (note or "").strip() or None
    if cleaned is not None and len(cleaned) > NOTE_LIMIT:
        raise AlertError(f"the note is longer than {NOTE_LIMIT} characters", "note")
    if alert.state not in OPEN_STATES:
        raise AlertError(f"the alert is {alert.state}: it can no longer be dismissed", "state")
    now = utcnow()
    alert.state = "dismissed"
    alert.open_key = None
    alert.closed_at = now
    alert.dismissed_by = user.id
    alert.dismiss_reason = reason
    alert.dismiss_note = cleaned
    _flush(session, alert)
    return alert


# --- reading ---------------------------------------------------------------------------------


def products_for(session: Session, alerts: Iterable[Alert]) -> dict[int, Product]:
    """The products the alerts name (offered, upgraded from, a rule's antecedent), by id."""
    from plugins.operational.models import Product

    ids: set[int] = set()
    for alert in alerts:
        ids.update(i for i in (alert.product_id, alert.from_product_id) if i is not None)
        ids.update(i for i in (alert.reason or {}).get("antecedent", []) if isinstance(i, int))
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(sorted(ids))))}


@functools.cache
def _catalogs() -> i18n.Catalogs:
    """The translations the alerts' texts use (the core's catalogs)."""
    return i18n.Catalogs()


def gettext(message: str) -> str:
    """``message`` in the current language (named so that message extraction finds it)."""
    return _catalogs().get(i18n.current_language()).gettext(message)


def _name(products: dict[int, Product], product_id: int | None, sku: str | None = None) -> str:
    """A product's name when known, else its SKU, else its id."""
    product = products.get(product_id) if product_id is not None else None
    if product is not None:
        return product.name
    return sku or (f"#{product_id}" if product_id is not None else "?")


def _names(language: str, names: Sequence[str]) -> str:
    """``A, B and C`` in ``language``."""
    from babel.lists import format_list

    if not names:
        return ""
    return format_list(list(names), locale=language)


def _ratio(value: float, language: str) -> str:
    """A lift such as ``3.1`` in the language's digits."""
    return i18n.format_number(round(value, 1), language)


def describe(alert: Alert, products: dict[int, Product]) -> str:
    """The alert's reason in plain words, in the current language.

    Cross-sell: "42% of customers who bought A and B also bought C, 3.1× the usual rate."
    """
    language = i18n.current_language()
    reason = alert.reason or {}
    share = functools.partial(i18n.format_share, language=language, decimals=0)
    if alert.kind == "cross_sell":
        skus = reason.get("antecedent_skus") or []
        ids = reason.get("antecedent") or []
        antecedent = [
            _name(products, pid, skus[i] if i < len(skus) else None) for i, pid in enumerate(ids)
        ]
        return gettext(
            "%(share)s of customers who bought %(antecedent)s also bought %(product)s, "
            "%(lift)s× the usual rate."
        ) % {
            "share": share(reason.get("confidence", alert.probability)),
            "antecedent": _names(language, antecedent),
            "product": _name(products, alert.product_id, reason.get("consequent_sku")),
            "lift": _ratio(float(reason.get("lift") or 0), language),
        }
    if alert.kind == "up_sell":
        params = {
            "from": _name(products, alert.from_product_id, reason.get("from_sku")),
            "to": _name(products, alert.product_id, reason.get("to_sku")),
            "category": reason.get("category") or "",
            "rate": share(reason.get("rate", alert.probability)),
        }
        if reason.get("via") == "category":
            first = gettext(
                "The customer bought %(from)s; %(to)s is the next tier up in %(category)s."
            )
        else:
            first = gettext("The customer bought %(from)s, which upgrades to %(to)s.")
        if reason.get("measured"):
            second = gettext("%(rate)s of customers who bought %(from)s later bought %(to)s.")
        else:
            second = gettext("Too few purchases to measure it: %(rate)s of buyers assumed.")
        return f"{first % params} {second % params}"
    parts = []
    alive = reason.get("probability_alive")
    if reason.get("signal") in ("alive", "both") and alive is not None:
        parts.append(
            gettext("The chance this customer still buys from us fell to %(alive)s.")
            % {"alive": share(alive)}
        )
    if reason.get("signal") in ("overdue", "both"):
        parts.append(
            gettext("No order for %(days)s days; they usually order every %(gap)s days.")
            % {
                "days": i18n.format_number(reason.get("days_since_last"), language),
                "gap": i18n.format_number(
                    round(float(reason.get("usual_gap_days") or 0)), language
                ),
            }
        )
    return " ".join(parts)


def headline(alert: Alert, products: dict[int, Product]) -> str:
    """A short title: "Offer <product>", "Upgrade to <product>", "Win back the customer"."""
    if alert.kind == "churn":
        return gettext("Win back the customer")
    name = _name(products, alert.product_id, (alert.reason or {}).get("consequent_sku"))
    if alert.kind == "up_sell":
        return gettext("Upgrade to %(product)s") % {"product": name}
    return gettext("Offer %(product)s") % {"product": name}


KIND_LABELS = {
    "cross_sell": N_("Cross-sell"),
    "up_sell": N_("Up-sell"),
    "churn": N_("Churn risk"),
}
STATE_LABELS = {
    "new": N_("New"),
    "seen": N_("Seen"),
    "acted": N_("Acted"),
    "converted": N_("Converted"),
    "dismissed": N_("Dismissed"),
    "expired": N_("Expired"),
}
REASON_LABELS = {
    "not_relevant": N_("Not relevant"),
    "already_has": N_("Customer already has it"),
    "bad_timing": N_("Bad timing"),
    "customer_declined": N_("Customer declined"),
    "other": N_("Other"),
}

_PLAIN_FIELDS = (
    "id",
    "customer_id",
    "kind",
    "product_id",
    "from_product_id",
    "rule_id",
    "rule_key",
    "run_id",
    "owner_id",
    "source",
    "state",
    "probability",
    "price_minor",
    "margin_minor",
    "expected_value_minor",
    "currency",
    "value_tier",
    "acted_by",
    "dismissed_by",
    "dismiss_reason",
    "dismiss_note",
    "converted_order_id",
    "credited_minor",
    "version",
)
_TIME_FIELDS = ("raised_at", "expires_at", "seen_at", "acted_at", "closed_at")


def as_dict(
    alert: Alert, products: dict[int, Product], customer_name: str | None = None
) -> dict[str, Any]:
    """The alert as JSON-ready data: its columns (times as ISO 8601), the product's name and
    SKU, ``headline`` and ``reason`` in the current language, and ``reason_data`` (the facts)."""
    data: dict[str, Any] = {name: getattr(alert, name) for name in _PLAIN_FIELDS}
    for name in _TIME_FIELDS:
        value = getattr(alert, name)
        data[name] = value.isoformat() if value is not None else None
    product = products.get(alert.product_id) if alert.product_id is not None else None
    source = products.get(alert.from_product_id) if alert.from_product_id is not None else None
    data.update(
        customer_name=customer_name,
        product_name=product.name if product else None,
        product_sku=product.sku if product else None,
        from_product_name=source.name if source else None,
        open=alert.state in OPEN_STATES,
        headline=headline(alert, products),
        reason=describe(alert, products),
        reason_data=alert.reason or {},
    )
    return data


def next_best_offers(
    crm: Crm, session: Session, customer_id: int, limit: int | None = None
) -> list[Alert]:
    """The customer's open offers (cross-sell, up-sell), highest expected value first; at most
    ``limit`` (the setting ``offers_shown`` when ``None``). The caller checks the customer is
    visible."""
    if limit is None:
        from plugins.smart_sales.config import settings

        limit = int(settings(crm)["offers_shown"])
    query = (
        select(Alert)
        .where(
            Alert.customer_id == customer_id,
            Alert.kind.in_(OFFER_KINDS),
            Alert.state.in_(OPEN_STATES),
        )
        .order_by(Alert.expected_value_minor.desc(), Alert.id)
        .limit(limit)
    )
    return list(session.scalars(query))


# --- generation --------------------------------------------------------------------------------

CHUNK = 5_000


@dataclass(frozen=True)
class _Item:
    """A product as generation reads it."""

    id: int
    sku: str
    name: str
    category: str | None
    price: int
    cost: int | None
    currency: str
    active: bool
    upgrade_to: int | None


@dataclass(slots=True)
class _Candidate:
    """An alert that may be raised (before de-duplication)."""

    customer_id: int
    kind: str
    product_id: int | None
    probability: float
    price_minor: int
    margin_minor: int
    expected_value_minor: int
    currency: str
    reason: dict[str, Any]
    from_product_id: int | None = None
    rule_id: int | None = None
    rule_key: str | None = None
    run_id: int | None = None
    key: str = ""

    def __post_init__(self) -> None:
        self.key = alert_key(self.customer_id, self.product_id)


#: (first, last) time a customer's non-excluded orders held a product
Span = tuple[dt.datetime, dt.datetime]


def alert_key(customer_id: int, product_id: int | None) -> str:
    """The ``open_key`` of an open alert: ``"<customer>:<product>"`` or ``"<customer>:churn"``."""
    return f"{customer_id}:{'churn' if product_id is None else product_id}"


def margin_of(price_minor: int, cost_minor: int | None, default_percent: int) -> int:
    """A product's margin: price - cost, or ``default_percent`` of the price (rounded half up)
    when the cost is unknown."""
    if cost_minor is not None:
        return price_minor - cost_minor
    return (price_minor * default_percent * 2 + 100) // 200


def expected_value(probability: float, margin_minor: int) -> int:
    """``probability x margin`` rounded half up to a whole minor unit."""
    return math.floor(probability * margin_minor + 0.5)


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def _by_customers(
    session: Session, query: Select[Any], column: Any, ids: list[int] | None
) -> Iterator[Any]:
    """Rows of ``query``, restricted to ``column IN ids`` (in chunks) unless ``ids`` is None."""
    if ids is None:
        yield from session.execute(query)
        return
    for chunk in _chunks(ids):
        yield from session.execute(query.where(column.in_(chunk)))


def purchases(
    session: Session,
    customer_ids: list[int] | None = None,
    product_ids: Iterable[int] | None = None,
) -> dict[int, dict[int, Span]]:
    """Per customer, the products their orders held (cancelled and returned orders left out),
    each with the first and last time it was ordered. ``None`` filters nothing."""
    from plugins.analytical.sql import EXCLUDED_STATUSES
    from plugins.operational.models import Order, OrderLine

    query = (
        select(
            Order.customer_id,
            OrderLine.product_id,
            func.min(Order.placed_at),
            func.max(Order.placed_at),
        )
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(Order.status.not_in(EXCLUDED_STATUSES), OrderLine.product_id.is_not(None))
        .group_by(Order.customer_id, OrderLine.product_id)
    )
    if product_ids is not None:
        wanted = sorted(set(product_ids))
        if not wanted:
            return {}
        query = query.where(OrderLine.product_id.in_(wanted))
    found: dict[int, dict[int, Span]] = defaultdict(dict)
    for customer_id, product_id, first, last in _by_customers(
        session, query, Order.customer_id, customer_ids
    ):
        found[customer_id][product_id] = (first, last)
    return dict(found)


def _catalogue(session: Session) -> dict[int, _Item]:
    from plugins.operational.models import Product

    rows = session.execute(
        select(
            Product.id,
            Product.sku,
            Product.name,
            Product.category,
            Product.price_minor,
            Product.cost_minor,
            Product.currency,
            Product.active,
            Product.upgrade_to_id,
        )
    )
    return {row[0]: _Item(*row) for row in rows}


def current_rules_run(session: Session) -> Any:
    """The latest mining run that succeeded (its rules are the current ones), or ``None``."""
    from plugins.smart_sales.models import MiningRun

    return session.scalars(
        select(MiningRun).where(MiningRun.status == "ok").order_by(MiningRun.id.desc()).limit(1)
    ).first()


def _cross_sell(
    session: Session,
    run: Any,
    bought: dict[int, dict[int, Span]],
    items: dict[int, _Item],
    default_margin: int,
) -> list[_Candidate]:
    """Cross-sell offers of ``run``'s unmuted rules, set-wise over every customer at once.

    A boolean matrix (customers x products named by rules) says who bought what; a rule's
    customers are the AND of its antecedent's columns without any of its consequent's. Per
    offered product the rules are tried by confidence (then lift), and each customer keeps the
    first that qualifies: the highest expected value, as the margin is the product's.
    """
    import numpy as np

    from plugins.smart_sales.models import MutedRule, Rule

    if run is None or run.status != "ok":
        return []
    muted = set(session.scalars(select(MutedRule.key)))
    rules = [
        rule
        for rule in session.scalars(select(Rule).where(Rule.run_id == run.id).order_by(Rule.id))
        if rule.key not in muted
    ]
    if not rules or not bought:
        return []
    customers = sorted(bought)
    named = sorted({p for rule in rules for p in (*rule.antecedent_ids, *rule.consequent_ids)})
    column = {pid: i for i, pid in enumerate(named)}
    matrix = np.zeros((len(customers), len(named)), dtype=bool)
    rows, cols = [], []
    for row, customer_id in enumerate(customers):
        for pid in bought[customer_id]:
            col = column.get(pid)
            if col is not None:
                rows.append(row)
                cols.append(col)
    matrix[rows, cols] = True

    def qualifying(rule: Any) -> Any:
        # computed when needed, not kept: thousands of rules x many customers would not fit
        holds = matrix[:, [column[p] for p in rule.antecedent_ids]].all(axis=1)
        return holds & ~matrix[:, [column[p] for p in rule.consequent_ids]].any(axis=1)

    rules.sort(key=lambda r: (-r.confidence, -r.lift, r.id))
    by_product: dict[int, list[Any]] = defaultdict(list)
    for rule in rules:  # in confidence order
        for pid in rule.consequent_ids:
            by_product[pid].append(rule)

    found: list[_Candidate] = []
    for pid, offering in by_product.items():
        item = items.get(pid)
        if item is None or not item.active:
            continue
        margin = margin_of(item.price, item.cost, default_margin)
        taken = np.zeros(len(customers), dtype=bool)
        for rule in offering:
            new = qualifying(rule) & ~taken
            if not new.any():
                continue
            taken |= new
            reason = {
                "rule": rule.key,
                "antecedent": list(rule.antecedent_ids),
                "antecedent_skus": [
                    items[p].sku if p in items else str(p) for p in rule.antecedent_ids
                ],
                "consequent_sku": item.sku,
                "confidence": rule.confidence,
                "lift": rule.lift,
                "support": rule.support,
            }
            value = expected_value(rule.confidence, margin)
            for row in np.flatnonzero(new):
                found.append(
                    _Candidate(
                        customer_id=customers[row],
                        kind="cross_sell",
                        product_id=pid,
                        probability=rule.confidence,
                        price_minor=item.price,
                        margin_minor=margin,
                        expected_value_minor=value,
                        currency=item.currency,
                        reason=reason,
                        rule_id=rule.id,
                        rule_key=rule.key,
                        run_id=run.id,
                    )
                )
    return found


def upgrade_targets(items: dict[int, _Item]) -> dict[int, tuple[int, str]]:
    """Each product's up-sell target and how: ``(upgrade_to product, "upgrade_to")`` when it has
    an active one, else ``(next tier, "category")``: the cheapest active product of its
    category, in its currency, priced above it (ties: lowest id)."""
    ladders: dict[tuple[str, str], list[_Item]] = defaultdict(list)
    for item in items.values():
        if item.category and item.active:
            ladders[(item.category, item.currency)].append(item)
    for ladder in ladders.values():
        ladder.sort(key=lambda i: (i.price, i.id))
    targets: dict[int, tuple[int, str]] = {}
    for item in items.values():
        if item.upgrade_to is not None:
            target = items.get(item.upgrade_to)
            if target is not None and target.active:
                targets[item.id] = (target.id, "upgrade_to")
            continue
        if not item.category:
            continue
        for step in ladders.get((item.category, item.currency), []):
            if step.price > item.price:
                targets[item.id] = (step.id, "category")
                break
    return targets


def upgrade_rates(
    spans: dict[int, dict[int, Span]], pairs: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], tuple[int, int]]:
    """For each ``(product, target)``: how many customers bought the product, and how many of
    them bought the target later (after their first purchase of the product)."""
    wanted = set(pairs)
    counts: dict[tuple[int, int], list[int]] = {pair: [0, 0] for pair in wanted}
    by_product: dict[int, list[int]] = defaultdict(list)
    for product_id, target_id in wanted:
        by_product[product_id].append(target_id)
    for held in spans.values():
        for product_id, (first, _) in held.items():
            for target_id in by_product.get(product_id, ()):
                count = counts[(product_id, target_id)]
                count[0] += 1
                target = held.get(target_id)
                if target is not None and target[1] > first:
                    count[1] += 1
    return {pair: (buyers, later) for pair, (buyers, later) in counts.items()}


def _up_sell(
    session: Session,
    bought: dict[int, dict[int, Span]],
    items: dict[int, _Item],
    options: dict[str, Any],
    everyone: bool,
) -> list[_Candidate]:
    """Up-sell offers: a bought product's upgrade or next tier that the customer never bought
    (for a tier, no product of the category priced above the one they hold)."""
    targets = upgrade_targets(items)
    wanted: dict[tuple[int, int], list[int]] = defaultdict(list)
    for customer_id, held in bought.items():
        top: dict[tuple[str, str], int] = {}
        for pid in held:
            item = items.get(pid)
            if item is not None and item.category:
                key = (item.category, item.currency)
                top[key] = max(top.get(key, item.price), item.price)
        for pid in held:
            if pid not in targets:
                continue
            target_id, via = targets[pid]
            if target_id in held:
                continue
            item = items[pid]
            if via == "category" and top[(item.category, item.currency)] > item.price:
                continue
            wanted[(pid, target_id)].append(customer_id)
    if not wanted:
        return []
    spans = bought if everyone else purchases(session, None, {p for pair in wanted for p in pair})
    rates = upgrade_rates(spans, wanted)
    assumed = options["upsell_rate_percent"] / 100
    found: list[_Candidate] = []
    for (pid, target_id), customers in wanted.items():
        source, target = items[pid], items[target_id]
        buyers, later = rates[(pid, target_id)]
        measured = buyers >= MIN_UPGRADE_SAMPLE
        if measured and later == 0:
            continue  # enough buyers, none upgraded: history says the offer does not work
        rate = later / buyers if measured else assumed
        margin = margin_of(target.price, target.cost, options["default_margin_percent"])
        reason = {
            "from_product_id": pid,
            "from_sku": source.sku,
            "to_sku": target.sku,
            "via": targets[pid][1],
            "category": source.category,
            "rate": rate,
            "measured": measured,
        }
        value = expected_value(rate, margin)
        found.extend(
            _Candidate(
                customer_id=customer_id,
                kind="up_sell",
                product_id=target_id,
                from_product_id=pid,
                probability=rate,
                price_minor=target.price,
                margin_minor=margin,
                expected_value_minor=value,
                currency=target.currency,
                reason=reason,
            )
            for customer_id in customers
        )
    return found


def _last_orders(session: Session, customer_ids: list[int] | None) -> dict[int, dt.datetime]:
    from plugins.analytical.sql import EXCLUDED_STATUSES
    from plugins.operational.models import Order

    query = (
        select(Order.customer_id, func.max(Order.placed_at))
        .where(Order.status.not_in(EXCLUDED_STATUSES))
        .group_by(Order.customer_id)
    )
    return dict(_by_customers(session, query, Order.customer_id, customer_ids))


def _churn(
    crm: Crm,
    session: Session,
    customer_ids: list[int] | None,
    options: dict[str, Any],
    now: dt.datetime,
) -> list[_Candidate]:
    """Churn alerts for customers of a good enough tier whose probability alive fell under the
    threshold, or whose next order is overdue against their usual gap.

    The probability alive is read only when the customer has not ordered since the lifetime
    value snapshot, and days since the last order come from the orders themselves, so an order
    placed after the snapshots silences the alert.
    """
    from plugins.analytical.models import Behaviour, ClvScore, Profit
    from plugins.analytical.snapshots import latest_run

    profit_run = latest_run(session, "profit")
    if profit_run is None:
        return []
    tiers = ("A", "B", "C")
    allowed = tiers[: tiers.index(options["churn_min_tier"]) + 1]
    query = select(Profit.customer_id, Profit.margin_minor).where(
        Profit.run_id == profit_run.id, Profit.tier.in_(allowed)
    )
    margins = dict(_by_customers(session, query, Profit.customer_id, customer_ids))
    if not margins:
        return []
    ids = sorted(margins) if customer_ids is not None else None
    clv_run, behaviour_run = latest_run(session, "clv"), latest_run(session, "behaviour")
    scores: dict[int, tuple[float, int]] = {}
    if clv_run is not None:
        query = select(ClvScore.customer_id, ClvScore.probability_alive, ClvScore.clv_minor).where(
            ClvScore.run_id == clv_run.id
        )
        scores = {
            cid: (alive, clv)
            for cid, alive, clv in _by_customers(session, query, ClvScore.customer_id, ids)
        }
    gaps: dict[int, float | None] = {}
    if behaviour_run is not None:
        query = select(Behaviour.customer_id, Behaviour.mean_gap_days).where(
            Behaviour.run_id == behaviour_run.id
        )
        gaps = dict(_by_customers(session, query, Behaviour.customer_id, ids))
    last = _last_orders(session, ids)
    alive_under = options["churn_alive_percent"] / 100
    overdue_factor = options["churn_overdue_percent"] / 100
    currency = crm.settings.default_currency
    found: list[_Candidate] = []
    for customer_id, margin in margins.items():
        last_order = last.get(customer_id)
        score = scores.get(customer_id)
        alive = score[0] if score is not None else None
        alive_signal = (
            alive is not None
            and alive < alive_under
            and (last_order is None or last_order.date() <= clv_run.as_of)
        )
        gap = gaps.get(customer_id)
        days = (now.date() - last_order.date()).days if last_order is not None else None
        overdue_signal = bool(gap and days is not None and days > overdue_factor * gap)
        if not (alive_signal or overdue_signal):
            continue
        signal = (
            "both" if alive_signal and overdue_signal else "alive" if alive_signal else "overdue"
        )
        at_risk = max(0, score[1] if score is not None else margin)
        found.append(
            _Candidate(
                customer_id=customer_id,
                kind="churn",
                product_id=None,
                probability=1 - alive if alive_signal else 0.5,
                price_minor=0,
                margin_minor=0,
                expected_value_minor=at_risk,
                currency=currency,
                reason={
                    "probability_alive": alive,
                    "days_since_last": days,
                    "usual_gap_days": gap,
                    "signal": signal,
                },
            )
        )
    return found


def _blocked(session: Session, customer_ids: list[int] | None, since: dt.datetime) -> set[str]:
    """Keys that may not be raised: open alerts, and alerts dismissed since ``since``."""
    opened = select(Alert.open_key).where(Alert.open_key.is_not(None))
    dismissed = select(Alert.customer_id, Alert.product_id).where(
        Alert.state == "dismissed", Alert.closed_at >= since
    )
    keys = {row[0] for row in _by_customers(session, opened, Alert.customer_id, customer_ids)}
    keys.update(
        alert_key(cid, pid)
        for cid, pid in _by_customers(session, dismissed, Alert.customer_id, customer_ids)
    )
    return keys


def _tiers(session: Session, customer_ids: list[int]) -> dict[int, str]:
    from plugins.analytical.models import Profit
    from plugins.analytical.snapshots import latest_run

    run = latest_run(session, "profit")
    if run is None:
        return {}
    query = select(Profit.customer_id, Profit.tier).where(Profit.run_id == run.id)
    return dict(_by_customers(session, query, Profit.customer_id, customer_ids))


def _insert(session: Session, rows: list[dict[str, Any]]) -> list[Any]:
    """Insert ``rows``, skipping any whose ``open_key`` is taken (another generation raised it
    meanwhile); returns ``(id, customer_id, product_id, owner_id, expected_value_minor, title)``
    and the fields of the ``alert.raised`` webhook payload of those inserted."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = Alert.__table__
    statement = (
        insert(table)
        .on_conflict_do_nothing(index_elements=["open_key"])
        .returning(
            table.c.id,
            table.c.customer_id,
            table.c.product_id,
            table.c.owner_id,
            table.c.expected_value_minor,
            table.c.title,
            *(table.c[name] for name in webhooks.RAISED_COLUMNS),
        )
    )
    connection = session.connection()
    made: list[Any] = []
    for start in range(0, len(rows), CHUNK):
        made.extend(connection.execute(statement, rows[start : start + CHUNK]).all())
    return made


def generate(
    crm: Crm,
    session: Session,
    *,
    run: Any = None,
    customer_ids: Iterable[int] | None = None,
    kinds: Iterable[str] = ALERT_KINDS,
    source: str = "generate",
    now: dt.datetime | None = None,
) -> int:
    """Raise the alerts that are due and return how many were raised.

    ``run`` is the mining run whose rules raise cross-sell alerts (the current one when
    ``None``); ``customer_ids`` limits the work to those customers (an order's customer);
    ``kinds`` picks cross_sell, up_sell and churn. Each customer and product gets the offer
    with the highest expected value; keys with an open alert or a dismissal within
    ``snooze_days`` are skipped, and a concurrent generation's alert wins over ours (the
    unique ``open_key``). Archived customers get none. Alerts past their expiry are closed
    first, so that a lapsed offer can be raised afresh. The five alerts of highest expected
    value of each owner are announced (``record_event``) after the commit; every alert raised
    is published as the ``alert.raised`` webhook event.
    """
    from core.customers.models import Customer
    from plugins.smart_sales.config import settings
    from plugins.smart_sales.models import ALERT_SOURCES

    wanted = set(kinds)
    if unknown := wanted - set(ALERT_KINDS):
        raise AlertError(f"unknown alert kind {sorted(unknown)[0]!r}", "kind")
    if source not in ALERT_SOURCES:
        raise AlertError(f"unknown source {source!r}", "source")
    options = settings(crm)
    now = now or utcnow()
    ids = None if customer_ids is None else sorted(set(customer_ids))
    if ids == []:
        return 0
    expire(crm, session, now)

    candidates: list[_Candidate] = []
    if wanted & set(OFFER_KINDS):
        bought = purchases(session, ids)
        items = _catalogue(session)
        if "cross_sell" in wanted:
            rules_run = run if run is not None else current_rules_run(session)
            candidates += _cross_sell(
                session, rules_run, bought, items, options["default_margin_percent"]
            )
        if "up_sell" in wanted:
            candidates += _up_sell(session, bought, items, options, ids is None)
    if "churn" in wanted:
        candidates += _churn(crm, session, ids, options, now)
    if not candidates:
        return 0

    best: dict[str, _Candidate] = {}
    for candidate in candidates:
        held = best.get(candidate.key)
        if held is None or candidate.expected_value_minor > held.expected_value_minor:
            best[candidate.key] = candidate
    blocked = _blocked(session, ids, now - dt.timedelta(days=options["snooze_days"]))
    chosen = [c for key, c in best.items() if key not in blocked]
    involved = sorted({c.customer_id for c in chosen})
    people = {
        row.id: row
        for chunk in _chunks(involved)
        for row in session.execute(
            select(Customer.id, Customer.owner_id, Customer.display_name, Customer.archived).where(
                Customer.id.in_(chunk)
            )
        )
    }
    chosen = [c for c in chosen if c.customer_id in people and not people[c.customer_id].archived]
    if not chosen:
        return 0
    tiers = _tiers(session, sorted({c.customer_id for c in chosen}))
    product_names = _product_names(session, {c.product_id for c in chosen})
    expires = now + dt.timedelta(days=options["alert_days"])
    run_id = run.id if run is not None else None
    rows = [
        {
            "customer_id": c.customer_id,
            "kind": c.kind,
            "title": _event_title(
                people[c.customer_id].display_name, product_names.get(c.product_id)
            )[:200],
            "product_id": c.product_id,
            "from_product_id": c.from_product_id,
            "rule_id": c.rule_id,
            "rule_key": c.rule_key,
            "run_id": c.run_id if c.run_id is not None else run_id,
            "owner_id": people[c.customer_id].owner_id,
            "source": source,
            "reason": c.reason,
            "probability": c.probability,
            "price_minor": c.price_minor,
            "margin_minor": c.margin_minor,
            "expected_value_minor": c.expected_value_minor,
            "currency": c.currency,
            "value_tier": tiers.get(c.customer_id),
            "state": "new",
            "open_key": c.key,
            "raised_at": now,
            "expires_at": expires,
            "credited_minor": 0,
            "version": 1,
        }
        for c in sorted(chosen, key=lambda c: (c.customer_id, c.key))
    ]
    made = _insert(session, rows)
    _announce_raised(crm, session, made)
    for row in made:
        webhooks.publish_raised(session, crm, row)
    return len(made)


def _product_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """Names of the products ``ids`` (``None`` ignored), by id."""
    from plugins.operational.models import Product

    wanted = sorted(i for i in ids if i is not None)
    found: dict[int, str] = {}
    for chunk in _chunks(wanted):
        query = select(Product.id, Product.name).where(Product.id.in_(chunk))
        found.update((pid, name) for pid, name in session.execute(query))
    return found


def _announce_raised(crm: Crm, session: Session, made: list[Any]) -> None:
    """Announce each owner's ``ANNOUNCED_PER_OWNER`` new alerts of highest expected value."""

    per_owner: dict[int, list[Any]] = defaultdict(list)
    for row in made:
        if row.owner_id is not None:
            per_owner[row.owner_id].append(row)
    told = [
        row
        for rows in per_owner.values()
        for row in sorted(rows, key=lambda r: (-r.expected_value_minor, r.id))[:ANNOUNCED_PER_OWNER]
    ]
    for row in sorted(told, key=lambda r: r.id):
        _announce(crm, session, row, "raised", RAISED_LABEL)


def _announce(crm: Crm, session: Session, row: Any, verb: str, label: str) -> None:
    """Tell the alert's owner (``row``: id, owner_id, title) after the commit."""
    from core import events

    events.announce(
        session,
        crm,
        events.RecordEvent(
            record_type=RECORD_TYPE,
            record_id=row.id,
            verb=verb,
            label=label,
            title=row.title,
            recipients=(row.owner_id,),
        ),
    )


def _event_title(customer_name: str | None, product_name: str | None) -> str:
    """A notification's title: "<product> · <customer>" (the customer alone for churn)."""
    parts = [p for p in (product_name, customer_name) if p]
    return " · ".join(parts) or "?"


# --- expiry and conversion ---------------------------------------------------------------------


def expire(crm: Crm, session: Session, now: dt.datetime | None = None) -> int:
    """Close every open alert whose ``expires_at`` has passed as ``expired``; returns how many.

    An expired alert may still convert within the conversion window.
    """
    now = now or utcnow()
    result = session.execute(
        update(Alert)
        .where(Alert.state.in_(OPEN_STATES), Alert.expires_at <= now)
        .values(state="expired", open_key=None, closed_at=now, version=Alert.version + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def _time(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def product_amounts(order: dict[str, Any]) -> dict[int, int]:
    """The sum of each product's line amounts in ``order`` (an ``order_placed`` payload)."""
    amounts: dict[int, int] = defaultdict(int)
    for line in order.get("lines") or ():
        if line.get("product_id") is not None:
            amounts[line["product_id"]] += int(line.get("amount_minor") or 0)
    return dict(amounts)


def _latest_before(
    session: Session,
    customer_id: int,
    product_ids: Sequence[int],
    placed: dt.datetime,
    window: dt.timedelta,
) -> list[Any]:
    """The latest alert raised before ``placed`` for each product of ``product_ids`` and for
    churn, among those raised within ``window`` of it (an older alert is older still).

    Rows of ``id, kind, product_id, state, currency, converted_order_id, owner_id``, in any
    state: whether the latest one may convert is the caller's question.
    """
    query = (
        select(
            Alert.id,
            Alert.kind,
            Alert.product_id,
            Alert.state,
            Alert.currency,
            Alert.converted_order_id,
            Alert.owner_id,
            Alert.title,
        )
        .where(
            Alert.customer_id == customer_id,
            Alert.raised_at <= placed,
            Alert.raised_at >= placed - window,
            or_(Alert.kind == "churn", Alert.product_id.in_(product_ids)),
        )
        .order_by(Alert.raised_at.desc(), Alert.id.desc())
    )
    latest: dict[str, Any] = {}
    for row in session.execute(query):
        latest.setdefault(alert_key(customer_id, row.product_id), row)
    return list(latest.values())


def _convert(session: Session, alert_id: int, order_id: int, credit: int, now: dt.datetime) -> bool:
    """Convert alert ``alert_id`` by ``order_id`` with ``credit`` if it is still neither
    dismissed nor converted (whatever else happened to it meanwhile); ``True`` when it did.

    One conditional UPDATE, not an ORM flush: a concurrent act, dismiss, "seen" or expiry of
    the alert can never fail the order's transaction with a version conflict. Whichever commits
    first wins: a dismissal committed first keeps the alert dismissed, a conversion committed
    first makes a later dismissal of that version stale.
    """
    result = session.execute(
        update(Alert)
        .where(
            Alert.id == alert_id,
            Alert.state != "dismissed",
            Alert.state != "converted",
            Alert.converted_order_id.is_(None),
        )
        .values(
            state="converted",
            open_key=None,
            closed_at=now,
            converted_order_id=order_id,
            credited_minor=credit,
            version=Alert.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    loaded = session.identity_map.get(session.identity_key(Alert, alert_id))
    if loaded is not None:  # this session's copy is stale now: reload it when next read
        session.expire(loaded)
    return True


def _credited_to_offers(session: Session, order_id: int) -> int:
    """What ``order_id`` credited to cross-sell and up-sell alerts so far."""
    total = session.scalar(
        select(func.coalesce(func.sum(Alert.credited_minor), 0)).where(
            Alert.converted_order_id == order_id, Alert.kind.in_(OFFER_KINDS)
        )
    )
    return int(total or 0)


def credit_order(
    crm: Crm, session: Session, order: dict[str, Any], now: dt.datetime | None = None
) -> list[int]:
    """Convert the alerts ``order`` (an ``order_placed`` payload) fulfils; their ids.

    For each product of the order, and for churn, only the **latest** alert of the customer
    raised before the order was placed may convert; it converts when it is neither dismissed
    nor converted already (open or expired both do), the order is placed within
    ``conversion_days`` of its ``raised_at``, the order is not cancelled or returned, and the
    alert is in the order's currency. An older alert never converts, even when the newer one
    was dismissed or converted.

    An offer is credited with the product's line amounts in the order; a churn alert with the
    rest of the order's total (the total minus what the same order credited to offers, never
    below 0), so that the order's money is counted once. Crediting the same order twice credits
    once. Each conversion is a conditional UPDATE (see :func:`_convert`), so a concurrent
    change of an alert never rolls back the order's credit. The owner is told after the commit;
    each conversion is published as the ``alert.converted`` webhook event.
    """
    from core import audit
    from plugins.analytical.sql import EXCLUDED_STATUSES
    from plugins.smart_sales.config import settings

    if order.get("status") in EXCLUDED_STATUSES:
        return []
    placed = _time(order["placed_at"])
    window = dt.timedelta(days=settings(crm)["conversion_days"])
    amounts = product_amounts(order)
    latest = _latest_before(session, order["customer_id"], sorted(amounts), placed, window)
    candidates = [
        row
        for row in latest
        if row.state not in ("dismissed", "converted")
        and row.converted_order_id is None
        and row.currency == order.get("currency")
    ]
    # offers first: the churn alert is credited with what they leave of the total
    candidates.sort(key=lambda row: (row.kind == "churn", row.id))
    now = now or utcnow()
    converted: list[tuple[Any, int]] = []
    for row in candidates:
        if row.kind == "churn":
            total = int(order.get("total_minor") or 0)
            credit = max(0, total - _credited_to_offers(session, order["id"]))
        else:
            credit = amounts[row.product_id]
        if _convert(session, row.id, order["id"], credit, now):
            converted.append((row, credit))
    if not converted:
        return []
    for row, credit in converted:
        audit.record(
            session,
            "update",
            Alert.__audit_model__ or Alert.__tablename__,
            row.id,
            before={"state": row.state},
            after={
                "state": "converted",
                "converted_order_id": order["id"],
                "credited_minor": credit,
            },
        )
    for row, credit in converted:
        if row.owner_id is not None:
            _announce(crm, session, row, "converted", CONVERTED_LABEL)
        webhooks.publish_converted(session, crm, row, order, credit)
    return [row.id for row, _ in converted]


# --- merging customers -------------------------------------------------------------------------


def merge_customer(session: Session, survivor: Any, merged: Any) -> None:
    """Move ``merged``'s alerts to ``survivor``. Where both have an open alert for the same
    product (or both a churn alert), the merged customer's closes as dismissed (reason
    ``other``, note "merged"); the others move with their ``open_key`` recomputed."""
    taken = set(
        session.scalars(
            select(Alert.open_key).where(
                Alert.customer_id == survivor.id, Alert.open_key.is_not(None)
            )
        )
    )
    now = utcnow()
    for alert in session.scalars(select(Alert).where(Alert.customer_id == merged.id)):
        key = alert_key(survivor.id, alert.product_id)
        if alert.open_key is not None and key in taken:
            alert.state = "dismissed"
            alert.open_key = None
            alert.closed_at = now
            alert.dismiss_reason = "other"
            alert.dismiss_note = "merged"
        elif alert.open_key is not None:
            alert.open_key = key
        alert.customer_id = survivor.id
    session.flush()
