"""Pre-deployment checklist items of the smart-selling module (``checklist_items`` hook).

Automatic checks return ``None`` when fine, or what is wrong with the numbers found; the
attestations (no check function) are confirmed by a person with ``crm check --ack``.

Items: enough baskets to mine (W301), costs of the products sold (W302), an owner for every
customer with open alerts (W303), a recent successful mining run (W304), the latest run not
failed (W305), current rules that can raise alerts (W306), a rule review owner (W307,
attestation), salespeople trained on the inbox (W308, attestation), valid settings (E309).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select

from core.checks import CheckItem, settings_valid

if TYPE_CHECKING:
    from core.runtime import Crm

#: The period the product cost check looks at.
COST_DAYS = 365
#: How many SKUs a detail names before "and N more".
SHOWN = 5


def _counted() -> Any:
    """The condition of orders mining counts (not cancelled or returned)."""
    from plugins.analytical.sql import EXCLUDED_STATUSES
    from plugins.operational.models import Order

    return Order.status.not_in(EXCLUDED_STATUSES)


def _aware(moment: dt.datetime) -> dt.datetime:
    """Timestamps read back naive (SQLite aggregates) are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _listed(names: list[str], total: int) -> str:
    """``a, b, c`` and ``and N more`` past :data:`SHOWN`."""
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {total - SHOWN} more" if total > SHOWN else "")


def multi_item_orders(crm: Crm) -> str | None:
    """Counted orders holding two or more distinct products (and no more than
    ``max_basket_size``, the baskets mining keeps) reach ``min_multi_item_orders``."""
    from plugins.operational.models import Order, OrderLine
    from plugins.smart_sales.config import settings

    wanted = settings(crm)
    sizes = (
        select(func.count(func.distinct(OrderLine.product_id)).label("size"))
        .join(Order, Order.id == OrderLine.order_id)
        .where(_counted(), OrderLine.product_id.is_not(None))
        .group_by(OrderLine.order_id)
        .subquery()
    )
    limit = wanted["max_basket_size"]
    with crm.db.session() as session:
        usable = (
            session.scalar(
                select(func.count()).select_from(sizes).where(sizes.c.size.between(2, limit))
            )
            or 0
        )
        capped = (
            session.scalar(select(func.count()).select_from(sizes).where(sizes.c.size > limit)) or 0
        )
    needed = wanted["min_multi_item_orders"]
    if usable >= needed:
        return None
    detail = (
        f"{usable} orders hold two or more products (at least {needed} wanted): "
        "rules mined from so few baskets are unreliable"
    )
    if capped:
        detail += f"; {capped} more hold over {limit} products and are left out of mining"
    return detail


def product_costs(crm: Crm) -> str | None:
    """Products sold in counted orders of the last 12 months have a cost (expected values use
    the margin; without a cost they assume ``default_margin_percent``)."""
    from core.db import utcnow
    from plugins.operational.models import Order, OrderLine, Product
    from plugins.smart_sales.config import settings

    since = utcnow() - dt.timedelta(days=COST_DAYS)
    sold = (
        select(OrderLine.product_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(_counted(), Order.placed_at >= since, OrderLine.product_id.is_not(None))
    )
    with crm.db.session() as session:
        total = (
            session.scalar(select(func.count()).select_from(Product).where(Product.id.in_(sold)))
            or 0
        )
        missing = list(
            session.scalars(
                select(Product.sku)
                .where(Product.id.in_(sold), Product.cost_minor.is_(None))
                .order_by(Product.sku)
            )
        )
    if not missing:
        return None
    margin = settings(crm)["default_margin_percent"]
    return (
        f"{len(missing)} of {total} products sold in the last {COST_DAYS} days "
        f"({len(missing) / total:.1%}) have no cost: {_listed(missing, len(missing))}; "
        f"their expected values assume a {margin}% margin"
    )


def owned_alerts(crm: Crm) -> str | None:
    """Every customer with an open alert has an active owner, and every open alert reaches
    an active owner's inbox."""
    from core.customers.models import Customer
    from core.models import User
    from plugins.smart_sales.models import OPEN_STATES, Alert

    active = select(User.id).where(User.is_active)
    is_open = Alert.state.in_(OPEN_STATES)
    with crm.db.session() as session:
        customers = (
            session.scalar(
                select(func.count(func.distinct(Alert.customer_id)))
                .join(Customer, Customer.id == Alert.customer_id)
                .where(
                    is_open,
                    or_(Customer.owner_id.is_(None), Customer.owner_id.not_in(active)),
                )
            )
            or 0
        )
        alerts = (
            session.scalar(
                select(func.count())
                .select_from(Alert)
                .where(is_open, or_(Alert.owner_id.is_(None), Alert.owner_id.not_in(active)))
            )
            or 0
        )
    if not customers and not alerts:
        return None
    parts = []
    if customers:
        parts.append(f"{customers} customer(s) with open alerts have no active owner")
    if alerts:
        parts.append(f"{alerts} open alert(s) are in no active salesperson's inbox")
    return "; ".join(parts)


def recent_mining(crm: Crm) -> str | None:
    """A mining run succeeded within ``mining_max_age_hours`` (the schedule runs)."""
    from core.db import utcnow
    from plugins.smart_sales.config import settings
    from plugins.smart_sales.models import MiningRun

    hours = settings(crm)["mining_max_age_hours"]
    with crm.db.session() as session:
        last = session.scalar(
            select(func.max(MiningRun.finished_at)).where(MiningRun.status == "ok")
        )
    if last is None:
        return "rules have never been mined successfully: schedule `crm smart-sales mine`"
    age = utcnow() - _aware(last)
    if age <= dt.timedelta(hours=hours):
        return None
    return (
        f"the last successful mining run finished {age.total_seconds() / 3600:.0f} hours ago "
        f"(at most {hours} wanted): is `crm smart-sales mine` still scheduled?"
    )


def latest_run_ok(crm: Crm) -> str | None:
    """The latest mining run did not fail (a failed run keeps the previous rules current)."""
    from plugins.smart_sales.models import MiningRun

    with crm.db.session() as session:
        latest = session.scalar(select(MiningRun).order_by(MiningRun.id.desc()).limit(1))
        if latest is None or latest.status != "failed":
            return None
        started = _aware(latest.started_at).isoformat(timespec="minutes")
        return f"mining run #{latest.id} of {started} failed: {latest.error or 'no message'}"


def usable_rules(crm: Crm) -> str | None:
    """The current rules (latest successful run) exist and are not all muted."""
    from plugins.smart_sales.models import MiningRun, MutedRule, Rule

    with crm.db.session() as session:
        current = session.scalar(select(func.max(MiningRun.id)).where(MiningRun.status == "ok"))
        if current is None:
            return None  # W304 says that rules were never mined
        total = (
            session.scalar(select(func.count()).select_from(Rule).where(Rule.run_id == current))
            or 0
        )
        muted = (
            session.scalar(
                select(func.count())
                .select_from(Rule)
                .where(Rule.run_id == current, Rule.key.in_(select(MutedRule.key)))
            )
            or 0
        )
    if total == 0:
        return (
            f"the current mining run #{current} found no rules: lower min_support or "
            "min_confidence, or mine more order history"
        )
    if muted == total:
        return f"all {total} rules of the current mining run #{current} are muted"
    return None


def items() -> list[CheckItem]:
    """The smart-selling module's checklist."""
    return [
        CheckItem(
            "smart_sales.W301",
            "warning",
            "data",
            "There are enough orders with two or more products to mine rules",
            "import more order history with its lines, or lower min_multi_item_orders in "
            "[smart_sales] if the shop is small (rules from few baskets mislead)",
            multi_item_orders,
        ),
        CheckItem(
            "smart_sales.W302",
            "warning",
            "data",
            "Products sold in the last year have a cost (alerts rank offers by margin)",
            "set the cost of the products (crm products import with a cost column, or the "
            "product page)",
            product_costs,
        ),
        CheckItem(
            "smart_sales.W303",
            "warning",
            "data",
            "Every customer with open alerts has an owner",
            "give those customers an active owner (customer page, or a customer import with "
            "an owner column); alerts are raised to the customer's owner",
            owned_alerts,
        ),
        CheckItem(
            "smart_sales.W304",
            "warning",
            "process",
            "Rules are mined on a schedule",
            "run `crm smart-sales mine` nightly from cron or a systemd timer, after "
            "`crm analytics refresh`",
            recent_mining,
        ),
        CheckItem(
            "smart_sales.W305",
            "warning",
            "technical",
            "The latest mining run succeeded",
            "read the error, fix the parameters (min_support too low is refused) and run "
            "`crm smart-sales mine` again",
            latest_run_ok,
        ),
        CheckItem(
            "smart_sales.W306",
            "warning",
            "data",
            "The current rules can raise cross-sell alerts",
            "review the rules on /smart_sales/rules; unmute the good ones or lower the "
            "thresholds in [smart_sales]",
            usable_rules,
        ),
        CheckItem(
            "smart_sales.W307",
            "warning",
            "process",
            "A rule review owner checks the mined rules on a schedule",
            "name who reviews the rules (mutes the odd ones) and how often, then attest "
            "with crm check --ack smart_sales.W307 --by EMAIL --note ...",
        ),
        CheckItem(
            "smart_sales.W308",
            "warning",
            "process",
            "Salespeople are trained on the alert inbox",
            "train each salesperson to act on or dismiss (with a reason) their alerts, then "
            "attest with crm check --ack smart_sales.W308 --by EMAIL --note ...",
        ),
        CheckItem(
            "smart_sales.E309",
            "error",
            "technical",
            "The smart-selling module's settings are valid",
            "fix the value named in [smart_sales] of crm.toml or CRM_SMART_SALES_*",
            settings_valid("smart_sales"),
        ),
    ]
