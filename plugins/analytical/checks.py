"""Pre-deployment checklist items of the analytical module (``checklist_items`` hook).

Automatic checks return ``None`` when fine, or what is wrong with the numbers found; the
attestation (no check function) is confirmed by a person with ``crm check --ack``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select

from core.checks import CheckItem, settings_valid
from plugins.analytical.sql import EXCLUDED_STATUSES, day_number

if TYPE_CHECKING:
    from core.runtime import Crm

#: The period the product cost check looks at.
COST_DAYS = 365


def _counted() -> Any:
    """The condition of orders analytics count (not cancelled or returned)."""
    from plugins.operational.models import Order

    return Order.status.not_in(EXCLUDED_STATUSES)


def history_for_clv(crm: Crm) -> str | None:
    """Orders span ``clv_min_history_days`` and ``clv_min_repeat_customers`` customers bought
    on two or more distinct days."""
    from plugins.analytical.config import settings
    from plugins.operational.models import Order

    wanted = settings(crm)
    with crm.db.session() as session:
        first, last = session.execute(
            select(func.min(Order.placed_at), func.max(Order.placed_at)).where(_counted())
        ).one()
        days = select(
            Order.customer_id.label("customer_id"),
            day_number(session.get_bind().dialect.name, Order.placed_at).label("day"),
        ).where(_counted())
        days = days.distinct().subquery()
        per_customer = (
            select(days.c.customer_id)
            .group_by(days.c.customer_id)
            .having(func.count() >= 2)
            .subquery()
        )
        repeaters = session.scalar(select(func.count()).select_from(per_customer)) or 0
    span = (last - first).days if first is not None else 0
    if span >= wanted["clv_min_history_days"] and repeaters >= wanted["clv_min_repeat_customers"]:
        return None
    return (
        f"orders span {span} days (at least {wanted['clv_min_history_days']} wanted) and "
        f"{repeaters} customers bought on two or more days (at least "
        f"{wanted['clv_min_repeat_customers']} wanted): lifetime value estimates are unreliable"
    )


def product_costs(crm: Crm) -> str | None:
    """Order lines of the last 12 months whose product has a cost (else margins are wrong)."""
    from core.db import utcnow
    from plugins.operational.models import Order, OrderLine, Product

    since = utcnow() - dt.timedelta(days=COST_DAYS)
    with crm.db.session() as session:
        total, missing = session.execute(
            select(
                func.count(),
                func.sum(case((Product.cost_minor.is_(None), 1), else_=0)),
            )
            .select_from(OrderLine)
            .join(Order, Order.id == OrderLine.order_id)
            .outerjoin(Product, Product.id == OrderLine.product_id)
            .where(_counted(), Order.placed_at >= since)
        ).one()
    if not missing:
        return None
    return (
        f"{missing} of {total} order lines of the last {COST_DAYS} days "
        f"({missing / total:.1%}) have no product cost: margins are overstated"
    )


def one_currency(crm: Crm) -> str | None:
    """Orders are in the default currency (analytics leave the others out)."""
    from plugins.operational.models import Order

    default = crm.settings.default_currency.upper()
    with crm.db.session() as session:
        others = session.execute(
            select(Order.currency, func.count())
            .where(_counted(), Order.currency != default)
            .group_by(Order.currency)
            .order_by(Order.currency)
        ).all()
    if not others:
        return None
    listed = ", ".join(f"{code}: {n}" for code, n in others)
    return f"orders in currencies other than {default} ({listed}) are left out of analytics"


def fresh_snapshots(crm: Crm) -> str | None:
    """Every snapshot kind of ``crm analytics refresh`` was computed within the allowed age."""
    from core.db import utcnow
    from plugins.analytical.config import settings
    from plugins.analytical.models import Run
    from plugins.analytical.refresh import step_names

    hours = settings(crm)["snapshot_max_age_hours"]
    oldest_allowed = utcnow() - dt.timedelta(hours=hours)
    with crm.db.session() as session:
        computed = dict(
            session.execute(select(Run.kind, func.max(Run.computed_at)).group_by(Run.kind)).all()
        )
    missing = [kind for kind in step_names() if kind not in computed]
    stale = [
        kind
        for kind in step_names()
        if kind in computed and _aware(computed[kind]) < oldest_allowed
    ]
    if not missing and not stale:
        return None
    parts = []
    if missing:
        parts.append(f"never computed: {', '.join(missing)}")
    if stale:
        parts.append(f"older than {hours} hours: {', '.join(stale)}")
    return "; ".join(parts) + "; run crm analytics refresh (nightly)"


def _aware(moment: dt.datetime) -> dt.datetime:
    """``MAX`` over a UTC column comes back naive from SQLite."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def items() -> list[CheckItem]:
    """The analytical module's checklist."""
    return [
        CheckItem(
            "analytical.W001",
            "warning",
            "data",
            "There is enough order history for lifetime value",
            "import more order history, or lower clv_min_history_days and "
            "clv_min_repeat_customers in [analytical] if the business is young",
            history_for_clv,
        ),
        CheckItem(
            "analytical.W002",
            "warning",
            "data",
            "Products sold have a cost",
            "set the cost of the products (crm products import with a cost column)",
            product_costs,
        ),
        CheckItem(
            "analytical.W003",
            "warning",
            "data",
            "Orders are in the default currency",
            "analytics count money in CRM_DEFAULT_CURRENCY only; convert or accept the gap",
            one_currency,
        ),
        CheckItem(
            "analytical.W004",
            "warning",
            "process",
            "An owner reviews segments and campaign results on a schedule",
            "name who reviews RFM segments, classes and campaign uplift, and how often, "
            "then attest",
        ),
        CheckItem(
            "analytical.W005",
            "warning",
            "technical",
            "Analytics snapshots are fresh",
            "schedule crm analytics refresh nightly (cron or a systemd timer)",
            fresh_snapshots,
        ),
        CheckItem(
            "analytical.E006",
            "error",
            "technical",
            "The analytical module's settings are valid",
            "fix the value named in [analytical] of crm.toml or CRM_ANALYTICAL_*",
            settings_valid("analytical"),
        ),
    ]
