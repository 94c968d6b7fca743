"""Alert performance and sales performance: figures over a period, computed in SQL.

**Alert performance** follows the alerts *raised* in the period (a cohort): how many were
raised, acted on (``acted_at`` set), converted, dismissed, expired or are still open, the
conversion rate (converted / raised), the revenue credited to them and the expected value they
were raised with; grouped by kind, product, salesperson (the alert's owner) or month of raising,
with a monthly series for the charts.

Credit stands only while the converting order does: an alert's ``credited_minor`` counts when
its ``converted_order_id`` names an order whose status is not cancelled or returned
(:data:`plugins.analytical.sql.EXCLUDED_STATUSES`). An order later cancelled or returned takes
its credit back, and so does a deleted order (``converted_order_id`` then NULL: the sale can no
longer be shown, so it is not counted). The alert still counts as converted -- the conversion
happened -- but the money is no longer credited.

**Sales performance** is per salesperson (``Order.owner_id``) or per team (the owner's core
team): revenue (orders placed in the period, cancelled and returned left out), margin (total
minus cost, over the orders whose cost is known; the others are counted), orders, average order
value, deals won and lost (operational opportunities closed in the period in a won or lost stage
of their pipeline), win rate, average won deal, the month-over-month revenue trend (the period's
last month against the month before) and a monthly series; and the customers with the largest
margins in the period.

Money is an integer count of minor units of the CRM's default currency; orders, deals and
alerts in other currencies are counted apart (``other_currencies``) and left out of the sums.

Who sees what: users holding a record scope of ``all`` see every figure; ``team`` sees the work
owned by their team (themselves included); ``own`` only their own figures. Work nobody owns
(unowned orders and alerts) counts only for scope ``all``. Alerts are further limited to those
the user may see (:func:`plugins.smart_sales.alerts.visible_condition`), and the customer
margins to customers the user may see.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    desc,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from core.i18n import N_
from plugins.analytical.sql import EXCLUDED_STATUSES, key_of, month_key, month_label
from plugins.smart_sales.models import ALERT_KINDS, Alert

if TYPE_CHECKING:
    from core.auth import SignedIn
    from core.runtime import Crm

READ = "smart_sales.performance:read"
ALERT_GROUPS = ("kind", "product", "owner", "month")
SALES_GROUPS = ("owner", "team")
#: Most months a period may span (the series get one value per month).
MAX_MONTHS = 120
#: Customers listed in the customer margins.
TOP_CUSTOMERS = 10
#: Labels of the alert kinds (msgids; pages translate them).
KIND_LABELS = {
    "cross_sell": N_("Cross-sell"),
    "up_sell": N_("Up-sell"),
    "churn": N_("Churn"),
}


class PerformanceError(ValueError):
    """A period or grouping the figures cannot be computed for; ``field`` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# --- periods ------------------------------------------------------------------------------------


def default_period(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The last twelve months: from the first day of the month eleven months back to today."""
    today = today or dt.datetime.now(dt.UTC).date()
    key = key_of(today) - 11
    return dt.date(key // 12, key % 12 + 1, 1), today


def _instant(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[start 00:00, end + 1 day 00:00)`` in UTC; the period includes both days."""
    if end < start:
        raise PerformanceError("end", "the period ends before it starts")
    if key_of(end) - key_of(start) + 1 > MAX_MONTHS:
        raise PerformanceError("start", f"the period spans more than {MAX_MONTHS} months")
    return _instant(start), _instant(end + dt.timedelta(days=1))


def _months(start: dt.date, end: dt.date) -> range:
    return range(key_of(start), key_of(end) + 1)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# --- who sees what ------------------------------------------------------------------------------


def owner_scope(user: SignedIn, column: Any) -> ColumnElement[bool] | None:
    """Rows whose owner ``column`` falls in the user's record scope for performance figures:
    ``None`` (every row) for scope ``all``; the user and their team's members for ``team``; the
    user alone for ``own``; nothing for ``shared``. Unowned rows count for scope ``all`` only."""
    from core.models import User

    if user.scope == "all":
        return None
    if user.scope == "team" and user.team_id is not None:
        return or_(
            column == user.id, column.in_(select(User.id).where(User.team_id == user.team_id))
        )
    if user.scope in ("team", "own"):
        return column == user.id
    return false()


def credit_stands() -> ColumnElement[bool]:
    """SQL condition on ``Alert``: the order that converted it still exists and is neither
    cancelled nor returned, so that its ``credited_minor`` counts."""
    from plugins.operational.models import Order

    return exists().where(
        Order.id == Alert.converted_order_id, Order.status.not_in(EXCLUDED_STATUSES)
    )


def _alert_condition(crm: Crm, user: SignedIn) -> ColumnElement[bool] | None:
    """Alerts whose figures the user may count: visible to them, and in their owner scope.

    Users holding ``smart_sales.alert:read`` see the alerts :func:`alerts.visible_condition`
    shows them; others (analysts reading aggregates) the alerts of the customers they may see.
    """
    from core import records

    if "smart_sales.alert:read" in user.permissions:
        from plugins.smart_sales import alerts

        visible = alerts.visible_condition(crm, user)
    else:
        visible = records.visible(crm, user, "smart_sales.alert", customer_column=Alert.customer_id)
    return _all_of(visible, owner_scope(user, Alert.owner_id))


def _all_of(*conditions: ColumnElement[bool] | None) -> ColumnElement[bool] | None:
    kept = [c for c in conditions if c is not None]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else and_(*kept)


def _where(query: Any, condition: ColumnElement[bool] | None) -> Any:
    return query if condition is None else query.where(condition)


# --- small arithmetic ---------------------------------------------------------------------------


def _int(value: Any) -> int:
    """A SQL sum (``None``, ``int`` or PostgreSQL's ``Decimal``) as an int."""
    return int(value or 0)


def _ratio(part: int, whole: int) -> float | None:
    return None if not whole else part / whole


def _average(total: int, count: int) -> int | None:
    """``total / count`` rounded half away from zero, in integer arithmetic (None without any)."""
    if not count:
        return None
    quotient, remainder = divmod(abs(total), count)
    if 2 * remainder >= count:
        quotient += 1
    return quotient if total >= 0 else -quotient


def _label_names(session: Session, model: Any, ids: set[Any], column: Any) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(model.id, column).where(model.id.in_(wanted))).all())


# --- alert performance --------------------------------------------------------------------------

_ALERT_COUNTS = ("raised", "acted", "converted", "dismissed", "expired", "other_currency")
_ALERT_MONEY = ("credited_minor", "expected_minor")


def _alert_group(by: str, dialect: str) -> Any:
    if by == "kind":
        return Alert.kind
    if by == "product":
        return Alert.product_id
    if by == "owner":
        return Alert.owner_id
    return month_key(dialect, Alert.raised_at)


def _alert_row(key: Any, values: dict[str, int]) -> dict[str, Any]:
    closed = values["converted"] + values["dismissed"] + values["expired"]
    return {
        "key": key,
        "label": None,
        **values,
        "open": values["raised"] - closed,
        "conversion_rate": _ratio(values["converted"], values["raised"]),
        "acted_rate": _ratio(values["acted"], values["raised"]),
    }


def alert_performance(
    crm: Crm,
    session: Session,
    user: SignedIn,
    *,
    start: dt.date,
    end: dt.date,
    by: str = "kind",
) -> dict[str, Any]:
    """What became of the alerts raised from ``start`` to ``end`` (both included), per ``by``
    (``kind``, ``product``, ``owner`` or ``month``), with totals and a monthly series.

    Each row: ``key`` (kind, product id, owner id or ``YYYY-MM``; ``None`` for churn alerts by
    product and unowned alerts by owner), ``label`` (product or owner name, else ``None``),
    ``raised``, ``acted``, ``converted``, ``dismissed``, ``expired``, ``open``,
    ``conversion_rate`` (converted / raised), ``acted_rate``, ``credited_minor`` (revenue credited
    on conversion, only while the converting order stands: not cancelled, returned or deleted;
    see the module's docstring), ``expected_minor`` (expected value when raised) and
    ``other_currency`` (alerts in another currency, counted but left out of the sums).
    """
    if by not in ALERT_GROUPS:
        raise PerformanceError("by", f"by must be one of {', '.join(ALERT_GROUPS)}")
    since, until = _bounds(start, end)
    currency = crm.settings.default_currency
    dialect = _dialect(session)
    in_currency = Alert.currency == currency
    inner = _where(
        select(
            _alert_group(by, dialect).label("g"),
            month_key(dialect, Alert.raised_at).label("m"),
            Alert.state.label("state"),
            case((Alert.acted_at.is_not(None), 1), else_=0).label("acted"),
            case((and_(in_currency, credit_stands()), Alert.credited_minor), else_=0).label(
                "credited"
            ),
            case((in_currency, Alert.expected_value_minor), else_=0).label("expected"),
            case((in_currency, 0), else_=1).label("other"),
        ).where(Alert.raised_at >= since, Alert.raised_at < until),
        _alert_condition(crm, user),
    ).subquery()

    def state_is(state: str) -> Any:
        return func.sum(case((inner.c.state == state, 1), else_=0))

    query = select(
        inner.c.g,
        inner.c.m,
        func.count(),
        func.sum(inner.c.acted),
        state_is("converted"),
        state_is("dismissed"),
        state_is("expired"),
        func.sum(inner.c.other),
        func.sum(inner.c.credited),
        func.sum(inner.c.expected),
    ).group_by(inner.c.g, inner.c.m)
    names = (*_ALERT_COUNTS, *_ALERT_MONEY)
    groups: dict[Any, dict[str, int]] = {}
    months: dict[int, dict[str, int]] = {}
    for g, m, *figures in session.execute(query):
        values = dict(zip(names, (_int(v) for v in figures), strict=True))
        key = month_label(int(g)) if by == "month" else g
        for target in (groups.setdefault(key, {}), months.setdefault(int(m), {})):
            for name, value in values.items():
                target[name] = target.get(name, 0) + value
    rows = [_alert_row(key, values) for key, values in groups.items()]
    _label_alert_rows(session, by, rows)
    totals = _alert_row(None, {n: sum(g[n] for g in groups.values()) for n in names})
    keys = _months(start, end)
    zero = dict.fromkeys(names, 0)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "by": by,
        "currency": currency,
        "rows": rows,
        "totals": totals,
        "months": [month_label(k) for k in keys],
        "series": {
            name: [months.get(k, zero)[name] for k in keys]
            for name in ("raised", "acted", "converted", "credited_minor")
        },
        "other_currencies": _alert_currencies(crm, session, user, since, until, currency),
    }


def _label_alert_rows(session: Session, by: str, rows: list[dict[str, Any]]) -> None:
    """Name the rows' products or owners, and sort the rows for reading."""
    from core.models import User
    from plugins.operational.models import Product

    keys = {row["key"] for row in rows}
    if by == "product":
        names = _label_names(session, Product, keys, Product.name)
    elif by == "owner":
        names = _label_names(session, User, keys, User.name)
    else:
        names = {}
    for row in rows:
        row["label"] = names.get(row["key"])
    if by == "kind":
        rank = {kind: n for n, kind in enumerate(ALERT_KINDS)}
        rows.sort(key=lambda r: (rank.get(r["key"], len(rank)), str(r["key"])))
    elif by == "month":
        rows.sort(key=lambda r: r["key"])
    else:
        rows.sort(key=lambda r: (-r["raised"], r["key"] is None, r["label"] or "", r["key"] or 0))


def _alert_currencies(
    crm: Crm, session: Session, user: SignedIn, since: dt.datetime, until: dt.datetime, code: str
) -> dict[str, int]:
    query = _where(
        select(Alert.currency, func.count())
        .where(Alert.raised_at >= since, Alert.raised_at < until, Alert.currency != code)
        .group_by(Alert.currency)
        .order_by(Alert.currency),
        _alert_condition(crm, user),
    )
    return {c: int(n) for c, n in session.execute(query)}


def credited_this_month(
    crm: Crm, session: Session, user: SignedIn, today: dt.date | None = None
) -> int:
    """Revenue credited to the alerts the user may count that converted this calendar month
    (UTC, so far), in minor units of the default currency; credit of orders since cancelled,
    returned or deleted does not count (see the module's docstring)."""
    today = today or dt.datetime.now(dt.UTC).date()
    since = _instant(today.replace(day=1))
    query = _where(
        select(func.sum(Alert.credited_minor)).where(
            Alert.state == "converted",
            Alert.closed_at >= since,
            Alert.closed_at < _instant(today + dt.timedelta(days=1)),
            Alert.currency == crm.settings.default_currency,
            credit_stands(),
        ),
        _alert_condition(crm, user),
    )
    return _int(session.execute(query).scalar())


# --- sales performance --------------------------------------------------------------------------

_SALES_FIGURES = (
    "orders",
    "revenue_minor",
    "costed_orders",
    "costed_revenue_minor",
    "margin_minor",
    "other_currency_orders",
)
_DEAL_FIGURES = ("won", "lost", "won_counted", "won_value_minor")


def _owner_group(by: str, owner_column: Any) -> tuple[Any, Any]:
    """The grouping column for ``by`` and the join it needs (``None``: none)."""
    from core.models import User

    if by == "team":
        return User.team_id, (User, User.id == owner_column)
    return owner_column, None


def _order_figures(
    session: Session,
    dialect: str,
    by: str,
    scope: ColumnElement[bool] | None,
    since: dt.datetime,
    until: dt.datetime,
    currency: str,
) -> dict[tuple[Any, int], dict[str, int]]:
    """Order figures per (group, month key) of the orders placed in ``[since, until)``."""
    from plugins.operational.models import Order

    group, join = _owner_group(by, Order.owner_id)
    counted = Order.currency == currency
    costed = and_(counted, Order.cost_minor.is_not(None))
    inner = select(
        group.label("g"),
        month_key(dialect, Order.placed_at).label("m"),
        case((counted, 1), else_=0).label("counted"),
        case((counted, Order.total_minor), else_=0).label("revenue"),
        case((costed, 1), else_=0).label("costed"),
        case((costed, Order.total_minor), else_=0).label("costed_revenue"),
        case((costed, Order.total_minor - Order.cost_minor), else_=0).label("margin"),
        case((counted, 0), else_=1).label("other"),
    ).select_from(Order)
    if join is not None:
        inner = inner.outerjoin(*join)
    inner = _where(
        inner.where(
            Order.placed_at >= since,
            Order.placed_at < until,
            Order.status.not_in(EXCLUDED_STATUSES),
        ),
        scope,
    ).subquery()
    query = select(
        inner.c.g,
        inner.c.m,
        *(
            func.sum(c)
            for c in (
                inner.c.counted,
                inner.c.revenue,
                inner.c.costed,
                inner.c.costed_revenue,
                inner.c.margin,
                inner.c.other,
            )
        ),
    ).group_by(inner.c.g, inner.c.m)
    return {
        (g, int(m)): dict(zip(_SALES_FIGURES, (_int(v) for v in figures), strict=True))
        for g, m, *figures in session.execute(query)
    }


def _deal_figures(
    session: Session,
    dialect: str,
    by: str,
    scope: ColumnElement[bool] | None,
    since: dt.datetime,
    until: dt.datetime,
    currency: str,
) -> dict[tuple[Any, int], dict[str, int]]:
    """Deals won and lost per (group, month key) among opportunities closed in the period."""
    from plugins.operational.models import Opportunity

    group, join = _owner_group(by, Opportunity.owner_id)
    from plugins.operational.pipeline import in_stage_kind

    won, lost = in_stage_kind("won"), in_stage_kind("lost")
    won_counted = and_(won, Opportunity.currency == currency)
    inner = select(
        group.label("g"),
        month_key(dialect, Opportunity.closed_at).label("m"),
        case((won, 1), else_=0).label("won"),
        case((lost, 1), else_=0).label("lost"),
        case((won_counted, 1), else_=0).label("won_counted"),
        case((won_counted, Opportunity.expected_revenue_minor), else_=0).label("won_value"),
    ).select_from(Opportunity)
    if join is not None:
        inner = inner.outerjoin(*join)
    inner = _where(
        inner.where(Opportunity.closed_at >= since, Opportunity.closed_at < until), scope
    ).subquery()
    query = select(
        inner.c.g,
        inner.c.m,
        func.sum(inner.c.won),
        func.sum(inner.c.lost),
        func.sum(inner.c.won_counted),
        func.sum(inner.c.won_value),
    ).group_by(inner.c.g, inner.c.m)
    return {
        (g, int(m)): dict(zip(_DEAL_FIGURES, (_int(v) for v in figures), strict=True))
        for g, m, *figures in session.execute(query)
    }


def _trend(this: int, last: int) -> dict[str, Any]:
    """This month's revenue against last month's: the change as a ratio (None from zero)."""
    change = None if not last else (this - last) / last
    direction = "up" if this > last else "down" if this < last else "flat"
    return {
        "this_month_minor": this,
        "last_month_minor": last,
        "change": change,
        "direction": direction,
    }


def _sales_row(
    key: Any, label: str | None, values: dict[str, int], trend: tuple[int, int]
) -> dict[str, Any]:
    """One row of sales performance from its summed figures."""
    decided = values["won"] + values["lost"]
    return {
        "key": key,
        "label": label,
        "orders": values["orders"],
        "revenue_minor": values["revenue_minor"],
        "margin_minor": values["margin_minor"],
        "margin_rate": _ratio(values["margin_minor"], values["costed_revenue_minor"]),
        "costed_orders": values["costed_orders"],
        "orders_without_cost": values["orders"] - values["costed_orders"],
        "average_order_minor": _average(values["revenue_minor"], values["orders"]),
        "other_currency_orders": values["other_currency_orders"],
        "won": values["won"],
        "lost": values["lost"],
        "win_rate": _ratio(values["won"], decided),
        "won_value_minor": values["won_value_minor"],
        "average_won_minor": _average(values["won_value_minor"], values["won_counted"]),
        **_trend(*trend),
    }


def sales_performance(
    crm: Crm,
    session: Session,
    user: SignedIn,
    *,
    start: dt.date,
    end: dt.date,
    by: str = "owner",
) -> dict[str, Any]:
    """Revenue, margin, orders, deals and trends from ``start`` to ``end`` (both included) per
    salesperson (``by="owner"``, the order's or deal's owner) or team (``by="team"``, the owner's
    core team), with totals, a monthly series and the customers with the largest margins.

    Each row: ``key`` (user or team id; ``None`` for unowned work or owners without a team),
    ``label`` (their name), ``orders``, ``revenue_minor``, ``margin_minor`` (over
    ``costed_orders``), ``margin_rate`` (margin / revenue of those orders),
    ``orders_without_cost``, ``average_order_minor``, ``other_currency_orders``, ``won``,
    ``lost``, ``win_rate`` (won / closed), ``won_value_minor``, ``average_won_minor``, and the
    trend: ``this_month_minor`` (revenue of ``end``'s month up to ``end``), ``last_month_minor``
    (the whole month before), ``change`` (ratio, ``None`` when last month had none) and
    ``direction`` (up, down, flat).
    """
    from plugins.operational.models import Opportunity, Order

    if by not in SALES_GROUPS:
        raise PerformanceError("by", f"by must be one of {', '.join(SALES_GROUPS)}")
    since, until = _bounds(start, end)
    currency = crm.settings.default_currency
    dialect = _dialect(session)
    orders_scope = owner_scope(user, Order.owner_id)
    orders = _order_figures(session, dialect, by, orders_scope, since, until, currency)
    deals = _deal_figures(
        session, dialect, by, owner_scope(user, Opportunity.owner_id), since, until, currency
    )
    this_key = key_of(end)
    last_start = _instant(dt.date((this_key - 1) // 12, (this_key - 1) % 12 + 1, 1))
    recent = (
        orders
        if last_start >= since
        else _order_figures(session, dialect, by, orders_scope, last_start, until, currency)
    )
    zero = dict.fromkeys((*_SALES_FIGURES, *_DEAL_FIGURES), 0)
    groups: dict[Any, dict[str, int]] = {}
    months: dict[int, dict[str, int]] = {}
    for (g, m), values in (*orders.items(), *deals.items()):
        for target in (groups.setdefault(g, dict(zero)), months.setdefault(m, dict(zero))):
            for name, value in values.items():
                target[name] += value
    trends: dict[Any, list[int]] = {}
    for (g, m), values in recent.items():
        if m in (this_key, this_key - 1):
            trends.setdefault(g, [0, 0])[m != this_key] += values["revenue_minor"]
    labels = _sales_labels(session, by, set(groups) | set(trends))
    rows = [
        _sales_row(
            key, labels.get(key), groups.get(key, dict(zero)), tuple(trends.get(key, (0, 0)))
        )
        for key in set(groups) | set(trends)
    ]
    rows.sort(
        key=lambda r: (-r["revenue_minor"], r["key"] is None, r["label"] or "", r["key"] or 0)
    )
    total = {n: sum(g[n] for g in groups.values()) for n in zero}
    total_trend = (sum(t[0] for t in trends.values()), sum(t[1] for t in trends.values()))
    keys = _months(start, end)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "by": by,
        "currency": currency,
        "rows": rows,
        "totals": _sales_row(None, None, total, total_trend),
        "trend_months": [month_label(this_key), month_label(this_key - 1)],
        "months": [month_label(k) for k in keys],
        "series": {
            name: [months.get(k, zero)[name] for k in keys]
            for name in ("revenue_minor", "margin_minor", "orders", "won", "lost")
        },
        "customers": customer_margins(crm, session, user, since=since, until=until),
        "other_currencies": _order_currencies(session, orders_scope, since, until, currency),
    }


def _sales_labels(session: Session, by: str, keys: set[Any]) -> dict[Any, str]:
    from core.models import Team, User

    if by == "team":
        return _label_names(session, Team, keys, Team.label)
    return _label_names(session, User, keys, User.name)


def _order_currencies(
    session: Session,
    scope: ColumnElement[bool] | None,
    since: dt.datetime,
    until: dt.datetime,
    currency: str,
) -> dict[str, int]:
    from plugins.operational.models import Order

    query = _where(
        select(Order.currency, func.count())
        .where(
            Order.placed_at >= since,
            Order.placed_at < until,
            Order.status.not_in(EXCLUDED_STATUSES),
            Order.currency != currency,
        )
        .group_by(Order.currency)
        .order_by(Order.currency),
        scope,
    )
    return {c: int(n) for c, n in session.execute(query)}


def customer_margins(
    crm: Crm,
    session: Session,
    user: SignedIn,
    *,
    since: dt.datetime,
    until: dt.datetime,
    limit: int = TOP_CUSTOMERS,
) -> list[dict[str, Any]]:
    """The customers with the largest margin on the orders of ``[since, until)`` that the user's
    scope counts, among the customers the user may see: ``customer_id``, ``name``, ``orders``,
    ``revenue_minor``, ``margin_minor`` (over orders with a cost), ``margin_rate`` and
    ``orders_without_cost``; largest margin first."""
    from core import records
    from core.customers.models import Customer
    from plugins.operational.models import Order

    currency = crm.settings.default_currency
    costed = Order.cost_minor.is_not(None)
    margin = func.sum(case((costed, Order.total_minor - Order.cost_minor), else_=0))
    query = (
        select(
            Order.customer_id,
            Customer.display_name,
            func.count(),
            func.sum(Order.total_minor),
            margin.label("margin"),
            func.sum(case((costed, Order.total_minor), else_=0)),
            func.sum(case((costed, 0), else_=1)),
        )
        .join(Customer, Customer.id == Order.customer_id)
        .where(
            Order.placed_at >= since,
            Order.placed_at < until,
            Order.status.not_in(EXCLUDED_STATUSES),
            Order.currency == currency,
        )
        .group_by(Order.customer_id, Customer.display_name)
        .order_by(desc(literal_column("margin")), Order.customer_id)
        .limit(limit)
    )
    query = _where(query, owner_scope(user, Order.owner_id))
    query = _where(query, records.customer_condition(crm, user))
    return [
        {
            "customer_id": customer_id,
            "name": name,
            "orders": int(n),
            "revenue_minor": _int(revenue),
            "margin_minor": _int(margin_sum),
            "margin_rate": _ratio(_int(margin_sum), _int(costed_revenue)),
            "orders_without_cost": _int(missing),
        }
        for customer_id, name, n, revenue, margin_sum, costed_revenue, missing in session.execute(
            query
        )
    ]
