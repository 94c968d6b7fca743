"""The four customer classes staff care for: loyal, potential, new, unaware / not interested.

Evaluated as of date D for every customer not archived. Only orders placed up to the end of D
(UTC) count, cancelled and returned ones left out. "Within the last N days" means in the N
calendar days (UTC) ending with D, D included: the order or contact is less than N days old
(``days ago = D - its UTC date``, so ``0 <= days ago < N``). The first rule that matches wins:

1. **new**: the first order is within the last ``new_days`` days;
2. **loyal**: at least ``loyal_min_orders`` orders and the last one within ``loyal_days``;
3. **potential**: an opportunity open at D (created up to D and either still in a stage of
   kind ``open`` of its team's pipeline, the default pipeline for a team without its own, or
   closed after D), or an inbound interaction within ``potential_days``, or an order within
   ``loyal_days`` (bought, not loyal yet);
4. **unaware**: none of these (never bought, or bought long ago and no contact since).

Everything runs in one ``INSERT ... SELECT`` (aggregate subqueries and ``CASE``). Each row
keeps a machine-readable ``reason``: ``key=number`` pairs joined by ``;`` (``orders=3;
last_days=12``, ``first_days=5;orders=1``, ``opportunities=2``, ``inbound_days=4``,
``orders=0``), which the customer 360 panel turns into a translated sentence.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    String,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session

from core.i18n import N_
from plugins.analytical import snapshots
from plugins.analytical.models import CustomerClass, Run
from plugins.analytical.snapshots import replace_run
from plugins.analytical.sql import EXCLUDED_STATUSES, days_before

if TYPE_CHECKING:
    from core.runtime import Crm

#: The classes, in the order pages list them.
CLASSES = ("loyal", "potential", "new", "unaware")
CLASS_LABELS = {
    "loyal": N_("Loyal"),
    "potential": N_("Potential"),
    "new": N_("New (just acquired)"),
    "unaware": N_("Unaware / not interested"),
}
#: What staff should do for each class (the source documents' care plan).
CARE_PLANS = {
    "loyal": N_(
        "Keep them happy: thank them, offer loyalty benefits and early access, ask for referrals."
    ),
    "potential": N_(
        "They are trying us: follow up quickly and give them a reason to continue "
        "(a demo, a trial offer, an answer to their question)."
    ),
    "new": N_(
        "Just acquired: welcome them, make sure the first experience goes well, "
        "check satisfaction after delivery."
    ),
    "unaware": N_(
        "No current need or does not know us: inform without pressure, "
        "and keep them in broad awareness campaigns."
    ),
}
#: The settings the rules read.
RULES = ("new_days", "loyal_min_orders", "loyal_days", "potential_days")


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def open_opportunity_condition(end: dt.datetime) -> Any:
    """Opportunities open at ``end``: created before it, and in an open stage of their team's
    pipeline (the default pipeline when the team has none) or closed only after it."""
    from plugins.operational.models import Opportunity
    from plugins.operational.pipeline import in_open_stage

    return and_(
        Opportunity.created_at < end,
        or_(Opportunity.closed_at >= end, and_(Opportunity.closed_at.is_(None), in_open_stage())),
    )


def _subqueries(dialect: str, as_of: dt.date, rules: dict[str, int]) -> tuple[Any, Any, Any]:
    from plugins.operational.models import Interaction, Opportunity, Order

    end = _start(as_of + dt.timedelta(days=1))
    orders = (
        select(
            Order.customer_id.label("customer_id"),
            func.count().label("n"),
            days_before(dialect, as_of, func.min(Order.placed_at)).label("first_days"),
            days_before(dialect, as_of, func.max(Order.placed_at)).label("last_days"),
        )
        .where(Order.placed_at < end, Order.status.not_in(EXCLUDED_STATUSES))
        .group_by(Order.customer_id)
        .subquery("orders")
    )
    opportunities = (
        select(Opportunity.customer_id.label("customer_id"), func.count().label("n"))
        .where(open_opportunity_condition(end))
        .group_by(Opportunity.customer_id)
        .subquery("opportunities")
    )
    since = _start(as_of - dt.timedelta(days=rules["potential_days"] - 1))
    inbound = (
        select(
            Interaction.customer_id.label("customer_id"),
            days_before(dialect, as_of, func.max(Interaction.occurred_at)).label("days"),
        )
        .where(
            Interaction.direction == "inbound",
            Interaction.occurred_at >= since,
            Interaction.occurred_at < end,
        )
        .group_by(Interaction.customer_id)
        .subquery("inbound")
    )
    return orders, opportunities, inbound


def _text(value: Any) -> Any:
    return cast(value, String)


def classes_query(dialect: str, as_of: dt.date, rules: dict[str, int]) -> Any:
    """The SELECT of ``customer_id, klass, reason`` for every customer not archived."""
    from core.customers.models import Customer

    orders, opportunities, inbound = _subqueries(dialect, as_of, rules)
    is_new = orders.c.first_days < rules["new_days"]
    bought_recently = orders.c.last_days < rules["loyal_days"]
    is_loyal = and_(orders.c.n >= rules["loyal_min_orders"], bought_recently)
    has_opportunity = opportunities.c.n > 0
    has_inbound = inbound.c.days.is_not(None)
    orders_and_last = (
        literal("orders=") + _text(orders.c.n) + literal(";last_days=") + _text(orders.c.last_days)
    )
    klass = case(
        (is_new, "new"),
        (is_loyal, "loyal"),
        (or_(has_opportunity, has_inbound, bought_recently), "potential"),
        else_="unaware",
    )
    reason = case(
        (
            is_new,
            literal("first_days=")
            + _text(orders.c.first_days)
            + literal(";orders=")
            + _text(orders.c.n),
        ),
        (is_loyal, orders_and_last),
        (has_opportunity, literal("opportunities=") + _text(opportunities.c.n)),
        (has_inbound, literal("inbound_days=") + _text(inbound.c.days)),
        (orders.c.n.is_(None), literal("orders=0")),
        else_=orders_and_last,
    )
    return (
        select(Customer.id.label("customer_id"), klass.label("klass"), reason.label("reason"))
        .outerjoin(orders, orders.c.customer_id == Customer.id)
        .outerjoin(opportunities, opportunities.c.customer_id == Customer.id)
        .outerjoin(inbound, inbound.c.customer_id == Customer.id)
        .where(Customer.archived.is_(False))
    )


def refresh(session: Session, as_of: dt.date, rules: dict[str, int]) -> Run:
    """Classify every customer as of ``as_of`` with ``rules`` (the four settings of
    :data:`RULES`) and store the run, replacing one of the same date."""
    missing = [name for name in RULES if name not in rules]
    if missing:
        raise ValueError(f"missing class rules: {', '.join(missing)}")
    params = {name: int(rules[name]) for name in RULES}
    run = replace_run(session, "classes", as_of, params)
    query = classes_query(session.get_bind().dialect.name, as_of, params).subquery("classes")
    rows = select(literal(run.id), query.c.customer_id, query.c.klass, query.c.reason)
    session.execute(
        insert(CustomerClass).from_select(["run_id", "customer_id", "klass", "reason"], rows)
    )
    counts = dict(
        session.execute(
            select(CustomerClass.klass, func.count())
            .where(CustomerClass.run_id == run.id)
            .group_by(CustomerClass.klass)
        ).all()
    )
    run.rows = sum(counts.values())
    run.summary = {"classes": {name: int(counts.get(name, 0)) for name in CLASSES}}
    return run


def refresh_step(crm: Crm, session: Session, as_of: dt.date) -> Run:
    """The customer classes step of ``crm analytics refresh``."""
    from plugins.analytical.config import settings

    values = settings(crm)
    return refresh(session, as_of, {name: values[name] for name in RULES})


def parse_reason(reason: str | None) -> dict[str, int]:
    """``"orders=3;last_days=12"`` as ``{"orders": 3, "last_days": 12}`` (bad parts skipped)."""
    parsed: dict[str, int] = {}
    for part in (reason or "").split(";"):
        key, _, value = part.partition("=")
        if key and value.lstrip("-").isdigit():
            parsed[key.strip()] = int(value)
    return parsed


def latest_run(session: Session) -> Run | None:
    """The newest classes snapshot."""
    return snapshots.latest_run(session, "classes")


def class_filter(value: str) -> Any:
    """The customer list's "Class" filter: customers of class ``value`` in the latest run
    (an unknown class matches nobody)."""
    from sqlalchemy import false

    from core.customers.models import Customer

    if value not in CLASSES:
        return false()
    return Customer.id.in_(
        select(CustomerClass.customer_id).where(
            CustomerClass.run_id == snapshots.latest_run_id("classes"),
            CustomerClass.klass == value,
        )
    )
