"""Plain helpers shared by the smart-selling tests: products, customers, orders at given dates
(through the operational services), raw alerts, analytics snapshots, signed-in users.

Orders made with :func:`order` do not call ``order_placed`` unless ``notify=True`` (history set
up for a test should not raise alerts as it is written); everything else the operational
service does (lines, totals, costs) is the real path.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core import auth, i18n
from core.auth import SignedIn
from plugins.operational import orders
from plugins.smart_sales.models import OPEN_STATES, Alert
from tests.plugins.collaborative.helpers import add_customer

_EVENTS = "crm_events"  # core.events' key of session.info: events waiting for the commit

#: The people of ``tests.plugins.collaborative.helpers.PEOPLE``, by what they are here.
AN = "an@example.com"  # sales, team north
BINH = "binh@example.com"  # sales, team north
CHI = "chi@example.com"  # sales, team south
DUNG = "dung@example.com"  # service (no alert permission)
MAI = "mai@example.com"  # manager, team north
ADMIN = "admin@example.com"


def now() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


def days_ago(days: float, base: dt.datetime | None = None) -> dt.datetime:
    """A UTC time ``days`` before ``base`` (now)."""
    return (base or now()) - dt.timedelta(days=days)


def product(
    session: Session,
    crm: Any,
    sku: str,
    *,
    name: str | None = None,
    price: int = 100_000,
    cost: int | None = None,
    category: str | None = None,
    upgrade_to: int | None = None,
    currency: str | None = None,
    active: bool = True,
) -> int:
    """Create a product through ``operational.orders.create_product``; returns its id.

    Money in minor units (VND by default: no minor digits, so ``price`` is in đồng)."""
    data: dict[str, Any] = {
        "sku": sku,
        "name": name or sku,
        "category": category,
        "price_minor": price,
        "cost_minor": cost,
        "currency": currency,
        "active": active,
        "upgrade_to_id": upgrade_to,
    }
    made = orders.create_product(session, crm, data)
    return made.id


def customer(session: Session, name: str, owner: int | None = None, **values: Any) -> int:
    """Insert a bare person customer owned by ``owner``; returns its id."""
    return add_customer(session, name, owner, **values)


def order(
    session: Session,
    crm: Any,
    customer_id: int,
    items: Iterable[int] | Mapping[int, int] | Iterable[orders.LineInput],
    *,
    at: dt.datetime | None = None,
    status: str = "placed",
    ref: str | None = None,
    notify: bool = False,
) -> int:
    """Create an order of ``customer_id`` placed ``at`` (now) with one line per product id of
    ``items`` (a mapping gives quantities; ``LineInput`` items are used as they are), through
    ``operational.orders.create_order``. Returns its id.

    Unless ``notify``, the events it queues (``order_placed``, the order's record event) are
    dropped, so writing history raises no alerts; events queued before stay.
    """
    if isinstance(items, Mapping):
        lines = [orders.LineInput(pid, quantity) for pid, quantity in items.items()]
    else:
        lines = [
            item if isinstance(item, orders.LineInput) else orders.LineInput(item) for item in items
        ]
    queued = list(session.info.get(_EVENTS, []))
    made = orders.create_order(
        session,
        crm,
        customer_id=customer_id,
        lines=lines,
        placed_at=at,
        order_status=status,
        ref=ref,
    )
    if not notify:
        session.info[_EVENTS] = queued
    return made.id


def open_key(customer_id: int, product_id: int | None) -> str:
    """The ``open_key`` of an open alert for ``customer_id`` and ``product_id`` (churn: None)."""
    return f"{customer_id}:{'churn' if product_id is None else product_id}"


def add_alert(session: Session, **values: Any) -> int:
    """Insert an alert row as it is (no checks, no events); returns its id.

    ``customer_id`` is required; the rest defaults to a new cross-sell alert raised now,
    expiring in 30 days, ``open_key`` set from the customer and product while open.
    """
    raised = values.get("raised_at") or now()
    state = values.get("state", "new")
    row: dict[str, Any] = {
        "kind": "cross_sell",
        "product_id": None,
        "owner_id": None,
        "source": "generate",
        "reason": {},
        "probability": 0.5,
        "price_minor": 0,
        "margin_minor": 0,
        "expected_value_minor": 0,
        "currency": "VND",
        "value_tier": None,
        "state": state,
        "raised_at": raised,
        "expires_at": raised + dt.timedelta(days=30),
        "credited_minor": 0,
        "version": 1,
    }
    row.update(values)
    if "open_key" not in values:
        row["open_key"] = (
            open_key(row["customer_id"], row["product_id"]) if state in OPEN_STATES else None
        )
    if state not in OPEN_STATES and "closed_at" not in values:
        row["closed_at"] = raised
    return session.execute(insert(Alert).values(**row)).inserted_primary_key[0]


def alerts_of(session: Session, customer_id: int | None = None, **where: Any) -> list[Alert]:
    """Alerts (of ``customer_id``, matching column ``where`` values), oldest first."""
    query = select(Alert).order_by(Alert.id)
    if customer_id is not None:
        query = query.where(Alert.customer_id == customer_id)
    for name, value in where.items():
        query = query.where(getattr(Alert, name) == value)
    return list(session.scalars(query))


def in_language(language: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` with ``language`` current (as a request in it would have),
    in a copy of the context so that the caller's language stays as it was."""

    def call() -> Any:
        i18n.set_language(language)
        return function(*args, **kwargs)

    return contextvars.copy_context().run(call)


def user(crm: Any, email: str) -> SignedIn:
    """``email``'s user as a request sees it (roles, permissions, scope, team)."""
    with crm.db.session() as session:
        user_id = crm.people[email] if email in crm.people else _user_id(session, email)
        found = auth.signed_in_user(session, user_id)
    assert found is not None, email
    return found


def _user_id(session: Session, email: str) -> int:
    from core.models import User

    return session.scalar(select(User.id).where(User.email == email))


# --- analytics ---------------------------------------------------------------------------------


def refresh_analytics(
    crm: Any, as_of: dt.date | None = None, only: list[str] | None = None
) -> None:
    """Run ``crm analytics refresh`` (the steps in ``only``, or all) as of ``as_of`` (today)."""
    from plugins.analytical.refresh import run_steps

    for _ in run_steps(crm, as_of or now().date(), only):
        pass


def _run(session: Session, kind: str, as_of: dt.date | None) -> int:
    from plugins.analytical.snapshots import replace_run

    return replace_run(session, kind, as_of or now().date()).id


def set_tiers(
    session: Session,
    tiers: Mapping[int, str],
    *,
    margins: Mapping[int, int] | None = None,
    as_of: dt.date | None = None,
) -> int:
    """Store a profitability snapshot giving each customer of ``tiers`` its tier (and margin,
    1,000,000 by default); returns the run id."""
    from plugins.analytical.models import Profit

    run_id = _run(session, "profit", as_of)
    rows = [
        {
            "run_id": run_id,
            "customer_id": cid,
            "revenue_minor": 0,
            "cogs_minor": 0,
            "cost_to_serve_minor": 0,
            "margin_minor": (margins or {}).get(cid, 1_000_000),
            "tier": tier,
            "lines_without_cost": 0,
        }
        for cid, tier in tiers.items()
    ]
    if rows:
        session.execute(insert(Profit), rows)
    return run_id


def set_clv(
    session: Session, scores: Mapping[int, tuple[float, int]], *, as_of: dt.date | None = None
) -> int:
    """Store a lifetime-value snapshot: customer -> (probability alive, CLV in minor units)."""
    from plugins.analytical.models import ClvScore

    run_id = _run(session, "clv", as_of)
    rows = [
        {
            "run_id": run_id,
            "customer_id": cid,
            "frequency": 3,
            "recency": 10.0,
            "t": 20.0,
            "monetary_minor": 100_000,
            "expected_purchases": 1.0,
            "probability_alive": alive,
            "clv_minor": clv,
        }
        for cid, (alive, clv) in scores.items()
    ]
    if rows:
        session.execute(insert(ClvScore), rows)
    return run_id


def set_behaviour(
    session: Session, gaps: Mapping[int, float | None], *, as_of: dt.date | None = None
) -> int:
    """Store a behaviour snapshot: customer -> mean gap between orders in days."""
    from plugins.analytical.models import Behaviour

    day = as_of or now().date()
    run_id = _run(session, "behaviour", as_of)
    rows = [
        {
            "run_id": run_id,
            "customer_id": cid,
            "orders": 3,
            "first_order": day - dt.timedelta(days=365),
            "last_order": day - dt.timedelta(days=30),
            "mean_gap_days": gap,
            "days_since_last": 30,
            "probability_alive": None,
            "churn_risk": "low",
            "churn_reason": "",
        }
        for cid, gap in gaps.items()
    ]
    if rows:
        session.execute(insert(Behaviour), rows)
    return run_id


# --- rules -------------------------------------------------------------------------------------


def add_run(
    session: Session,
    rules: Iterable[tuple[list[int], list[int], float, float, float]],
    *,
    status: str = "ok",
    skus: Mapping[int, str] | None = None,
) -> int:
    """Store a mining run with ``rules`` as ``(antecedent ids, consequent ids, support,
    confidence, lift)``; returns the run id. (``plugins.smart_sales.runs`` mines real ones.)"""
    from plugins.smart_sales.models import MiningRun, Rule

    run = MiningRun(status=status, params={}, finished_at=now())
    session.add(run)
    session.flush()
    names = dict(skus or {})
    for antecedent, consequent, support, confidence, lift in rules:
        left, right = sorted(antecedent), sorted(consequent)
        session.add(
            Rule(
                run_id=run.id,
                key=",".join(map(str, left)) + ">" + ",".join(map(str, right)),
                antecedent_ids=left,
                consequent_ids=right,
                antecedent=[names.get(i, str(i)) for i in left],
                consequent=[names.get(i, str(i)) for i in right],
                support=support,
                confidence=confidence,
                lift=lift,
                leverage=0.0,
                conviction=None,
                count=1,
            )
        )
    session.flush()
    return run.id
