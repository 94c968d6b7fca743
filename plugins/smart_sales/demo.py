"""Demo data of the smart-selling module, generated from a seed (same seed, same data).

On top of the operational demo (its products, customers and a year of orders, when loaded):

1. products of its own with an upgrade (a coffee filter and its gift set) and a category ladder
   (honey in three sizes), all priced in VND with a cost;
2. orders of the customers that hold products bought together (a teapot with its cups and the
   lotus tea, a coffee filter with condensed milk and ground coffee, Tết cakes with ginger jam
   and the oolong gift box), so that mining finds rules;
3. the analytics snapshots the alerts read (value tiers, probability alive, purchase rhythm);
4. a mining run (``runs.run_mining``), which raises the cross-sell alerts, and the up-sell and
   churn alerts (``alerts.generate``);
5. for each salesperson with alerts (the demo logins of ``crm demo`` first): alerts seen, acted
   on, dismissed with a reason, one expired, and one converted by an order of the customer with
   the suggested product (placed through the operational module, so ``order_placed`` credits
   it), so the inbox and the performance pages have something to show.

Each step runs only when its result is missing, so loading twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from core.db import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.runtime import Crm

#: sku, name, category, price (VND), cost (VND), upgrade to
PRODUCTS = (
    ("AM-TRA-BT", "Ấm trà gốm Bát Tràng", "Ấm chén", 350_000, 210_000, None),
    ("CHEN-MEN-LAM", "Bộ chén trà men lam", "Ấm chén", 280_000, 165_000, None),
    ("PHIN-INOX", "Phin cà phê inox", "Dụng cụ pha chế", 65_000, 30_000, "PHIN-QUA"),
    ("PHIN-QUA", "Bộ quà tặng phin và ly sứ", "Dụng cụ pha chế", 240_000, 130_000, None),
    ("SUA-DAC", "Sữa đặc có đường 380g", "Sữa", 28_000, 21_000, None),
    ("BANH-PIA", "Bánh pía Sóc Trăng", "Bánh mứt", 85_000, 50_000, None),
    ("MUT-GUNG", "Mứt gừng Huế", "Bánh mứt", 70_000, 38_000, None),
    ("MAT-ONG-250", "Mật ong rừng U Minh 250ml", "Mật ong", 120_000, 70_000, None),
    ("MAT-ONG-500", "Mật ong rừng U Minh 500ml", "Mật ong", 210_000, 120_000, None),
    ("MAT-ONG-1L", "Mật ong rừng U Minh 1 lít", "Mật ong", 380_000, 215_000, None),
)
#: The SKU whose presence says the demo products were loaded.
MARKER = PRODUCTS[0][0]
#: Baskets: (weight, products with the chance each is in the basket). SKUs of the operational
#: demo are used when it was loaded and left out otherwise.
PATTERNS = (
    (3, (("AM-TRA-BT", 1.0), ("CHEN-MEN-LAM", 0.75), ("TEA-SEN", 0.5))),
    (3, (("PHIN-INOX", 1.0), ("SUA-DAC", 0.8), ("CF-250", 0.6))),
    (2, (("BANH-PIA", 1.0), ("MUT-GUNG", 0.7), ("TEA-OL-GIFT", 0.4))),
    (2, (("MAT-ONG-250", 0.7), ("MAT-ONG-500", 0.3), ("MUT-GUNG", 0.2))),
)
ORDERS = 320
#: Products some buyers upgrade later: sku -> (upgrade sku, share of buyers who come back).
UPGRADES = {
    "PHIN-INOX": ("PHIN-QUA", 0.25),
    "MAT-ONG-250": ("MAT-ONG-500", 0.3),
    "MAT-ONG-500": ("MAT-ONG-1L", 0.2),
}
#: Orders are placed this many days back at most.
ORDER_DAYS = 420
#: The demo's own customers when ``crm demo`` did not create any.
MIN_CUSTOMERS = 30
#: Analytics steps whose snapshots alerts read (tiers, probability alive, purchase rhythm).
ANALYTICS_STEPS = ("rfm", "clv", "classes", "profit", "behaviour")
#: Salespeople whose inbox gets alerts in every state, in this order of preference.
DEMO_SELLERS = ("sales1@demo.example", "sales2@demo.example", "manager@demo.example")
SELLERS_SHOWN = 3
DISMISSALS = (
    ("customer_declined", "Khách đã mua ở cửa hàng khác, hẹn gọi lại quý sau."),
    ("bad_timing", "Khách đang sửa nhà, liên hệ lại sau Tết."),
    ("already_has", "Khách được tặng bộ này dịp sinh nhật."),
)


def load(crm: Crm, seed: int) -> str:
    """Load the module's demo data unless it is there; returns what was loaded."""
    from plugins.smart_sales.mining import MiningError
    from plugins.smart_sales.runs import current_run, run_mining

    rng = random.Random(f"smart_sales:{seed}")
    said: list[str] = []
    with crm.db.session() as session:
        loaded = session.scalar(_product_id(MARKER)) is not None
    if not loaded:
        customers = _customers(crm, seed)
        with crm.db.write() as session:
            products = _products(session, crm.settings.default_currency)
            orders = _orders(session, rng, customers, _catalogue(session))
        said.append(f"{len(products)} products, {orders} orders of products bought together")
        failed = _analytics(crm)
        if failed:
            said.append(f"analytics steps failed: {', '.join(failed)}")
    with crm.db.session() as session:
        run = current_run(session)
    if loaded and run is not None:
        return "already loaded"
    with crm.db.session() as session:  # the demo's orders are new, or nothing was mined yet
        manager = _user_ids(session).get("manager@demo.example")
    try:
        run = run_mining(crm, started_by=manager)
    except MiningError as exc:
        return "; ".join([*said, f"mining refused: {exc}"])
    said.append(f"mining run #{run.id}: {run.rules} rules from {run.baskets} baskets")
    raised = _raise_alerts(crm)
    if raised:
        said.append(f"{raised} more alerts")
    _alert_states(crm, rng)
    return "; ".join([*said, _state_summary(crm)])


# --- products, customers, orders ----------------------------------------------------------------


def _product_id(sku: str) -> Any:
    from plugins.operational.models import Product

    return select(Product.id).where(Product.sku == sku)


def _products(session: Session, currency: str) -> dict[str, Any]:
    """The demo's products, with their upgrades."""
    from plugins.operational.models import Product

    made = {
        sku: Product(
            sku=sku,
            name=name,
            category=category,
            price_minor=price,
            cost_minor=cost,
            currency=currency,
        )
        for sku, name, category, price, cost, _ in PRODUCTS
    }
    session.add_all(made.values())
    session.flush()
    for sku, *_, upgrade in PRODUCTS:
        if upgrade:
            made[sku].upgrade_to_id = made[upgrade].id
    session.flush()
    return made


def _catalogue(session: Session) -> dict[str, Any]:
    """The products the baskets name that exist (the operational demo's may not)."""
    from plugins.operational.models import Product

    wanted = {sku for _, items in PATTERNS for sku, _ in items}
    wanted.update(target for target, _ in UPGRADES.values())
    return {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(wanted)))}


def _user_ids(session: Session) -> dict[str, int]:
    """Active users' ids by e-mail."""
    from core.models import User

    return dict(session.execute(select(User.email, User.id).where(User.is_active)).all())


def _customers(crm: Crm, seed: int) -> list[tuple[int, int | None]]:
    """``(customer id, owner id)`` of the owned customers; the core's demo customers and staff
    are loaded first when there are too few (the module's demo loaded on its own)."""
    from core.customers.models import Customer

    query = (
        select(Customer.id, Customer.owner_id)
        .where(Customer.archived.is_(False), Customer.owner_id.is_not(None))
        .order_by(Customer.id)
    )
    with crm.db.session() as session:
        found = [tuple(row) for row in session.execute(query)]
    if len(found) < MIN_CUSTOMERS:
        from core.customers import demo_data

        demo_data.load(crm, MIN_CUSTOMERS * 4, seed)
        with crm.db.session() as session:
            found = [tuple(row) for row in session.execute(query)]
    return found  # type: ignore[return-value]


def _orders(
    session: Session,
    rng: random.Random,
    customers: list[tuple[int, int | None]],
    products: dict[str, Any],
) -> int:
    """``ORDERS`` orders of baskets drawn from ``PATTERNS``, by the customers' owners; some
    buyers of a product with an upgrade come back for it (``UPGRADES``), so that up-sell
    rates can be measured."""
    now = utcnow()
    weights = [weight for weight, _ in PATTERNS]
    made = 0
    for number in range(1, ORDERS + 1):
        customer_id, owner_id = rng.choice(customers)
        _, items = rng.choices(PATTERNS, weights)[0]
        drawn = [products.get(sku) for sku, chance in items if rng.random() < chance]
        basket = [p for p in dict.fromkeys(drawn) if p is not None]
        if not basket:
            continue
        placed = now - dt.timedelta(days=rng.randint(3, ORDER_DAYS), minutes=rng.randint(0, 1439))
        _order(session, rng, f"SS-DEMO-{number:05d}", customer_id, owner_id, placed, basket)
        made += 1
        for sku in [p.sku for p in basket]:
            upgrade = UPGRADES.get(sku)
            if upgrade is None or rng.random() >= upgrade[1]:
                continue
            later = placed + dt.timedelta(days=rng.randint(20, 120))
            if later < now:
                ref = f"SS-DEMO-{number:05d}-{upgrade[0]}"
                _order(session, rng, ref, customer_id, owner_id, later, [products[upgrade[0]]])
                made += 1
    session.flush()
    return made


def _order(
    session: Session,
    rng: random.Random,
    ref: str,
    customer_id: int,
    owner_id: int | None,
    placed: dt.datetime,
    basket: list[Any],
) -> None:
    """One order of ``basket`` with its lines and totals."""
    from plugins.operational.models import Order, OrderLine

    order = Order(
        ref=ref,
        customer_id=customer_id,
        channel=rng.choice(("shop", "website", "zalo", "facebook", "phone")),
        status=rng.choices(("delivered", "paid", "cancelled"), (90, 7, 3))[0],
        placed_at=placed,
        currency=basket[0].currency,
        owner_id=owner_id,
    )
    session.add(order)
    session.flush()
    total = cost = 0
    for product in basket:
        quantity = rng.choice((1, 1, 1, 2))
        amount = product.price_minor * quantity
        total += amount
        cost += (product.cost_minor or 0) * quantity
        session.add(
            OrderLine(
                order_id=order.id,
                product_id=product.id,
                quantity=quantity,
                unit_price_minor=product.price_minor,
                amount_minor=amount,
            )
        )
    order.total_minor, order.cost_minor = total, cost


def _analytics(crm: Crm) -> list[str]:
    """Refresh the snapshots the alerts read, as of today; the names of the steps that failed
    (too little history for lifetime value, say) -- the alerts then do without them."""
    from plugins.analytical.refresh import run_steps

    failed = []
    for step in ANALYTICS_STEPS:
        try:
            for _ in run_steps(crm, utcnow().date(), only=[step]):
                pass
        except Exception:
            failed.append(step)
    return failed


# --- alerts -----------------------------------------------------------------------------------


def _raise_alerts(crm: Crm) -> int:
    """Whatever the mining run's generation left due (normally nothing: it raises every
    kind), with the demo as their source."""
    from plugins.smart_sales import alerts

    with crm.db.write() as session:
        return alerts.generate(crm, session, source="demo")


def _sellers(session: Session) -> list[int]:
    """Owners of new alerts: the demo salespeople first, then by id; at most
    ``SELLERS_SHOWN``."""
    from plugins.smart_sales.models import Alert

    owners = set(
        session.scalars(
            select(Alert.owner_id).where(Alert.state == "new", Alert.owner_id.is_not(None))
        )
    )
    ids = _user_ids(session)
    preferred = [ids[e] for e in DEMO_SELLERS if ids.get(e) in owners]
    rest = sorted(owners - set(preferred))
    return (preferred + rest)[:SELLERS_SHOWN]


def _alert_states(crm: Crm, rng: random.Random) -> bool:
    """Move some of each seller's alerts through their lifecycle, once: ``False`` when the
    alerts already went through it (or there are none)."""
    from plugins.smart_sales.models import Alert

    with crm.db.session() as session:
        worked = session.scalar(
            select(Alert.id).where(Alert.state.in_(("acted", "dismissed", "converted"))).limit(1)
        )
        sellers = [] if worked is not None else _sellers(session)
    for index, seller in enumerate(sellers):
        _work_inbox(crm, seller, index, rng)
    return bool(sellers)


def _work_inbox(crm: Crm, seller: int, index: int, rng: random.Random) -> None:
    """One seller's day, in the inbox's order (tier, then expected value): two alerts acted on
    (the best offer and the top churn alert), two seen, an offer dismissed with a reason, one
    expired, and the second best offer acted on and converted by the customer's order."""
    from core import audit
    from core.auth import signed_in_user
    from core.models import User
    from plugins.smart_sales import alerts
    from plugins.smart_sales.config import settings
    from plugins.smart_sales.models import Alert

    days = settings(crm)["alert_days"]
    with crm.db.session() as session:
        email = session.scalar(select(User.email).where(User.id == seller))
    actor = audit.Actor(label=email or "crm demo", user_id=seller)
    with audit.acting_as(actor), crm.db.write() as session:
        user = signed_in_user(session, seller)
        if user is None:
            return
        inbox = list(
            session.scalars(
                select(Alert)
                .where(Alert.owner_id == seller, Alert.state == "new")
                .order_by(alerts.tier_rank(), Alert.expected_value_minor.desc(), Alert.id)
            )
        )
        offers = [a for a in inbox if a.product_id is not None]
        churns = [a for a in inbox if a.product_id is None]
        convert = _take(offers, 1)
        acted = [_take(offers, 0), _take(churns, 0) or _take(offers, 0)]
        seen = [_take(churns, 0) or _take(offers, 0), _take(offers, 0)]
        dismissed = _take(offers, 0)
        expired = _take(offers, len(offers) // 2)
        for alert in (a for a in acted if a is not None):
            alerts.mark_seen(session, alert, user)
            alerts.act(session, alert, user)
        for alert in (a for a in seen if a is not None):
            alerts.mark_seen(session, alert, user)
        if dismissed is not None:
            reason, note = DISMISSALS[index % len(DISMISSALS)]
            alerts.dismiss(session, dismissed, user, reason, note)
        if expired is not None:
            expired.raised_at = utcnow() - dt.timedelta(days=days + rng.randint(2, 9))
            expired.expires_at = expired.raised_at + dt.timedelta(days=days)
            session.flush()
            alerts.expire(crm, session)
        target = None
        if convert is not None:
            alerts.mark_seen(session, convert, user)
            alerts.act(session, convert, user)
            target = (convert.id, convert.customer_id, convert.product_id)
    if target is not None:
        with audit.acting_as(actor):
            _convert(crm, seller, *target)


def _take(pool: list[Any], index: int) -> Any:
    """Remove and return ``pool[index]`` (or the last one), ``None`` when empty."""
    if not pool:
        return None
    return pool.pop(min(index, len(pool) - 1))


def _convert(crm: Crm, seller: int, alert_id: int, customer_id: int, product_id: int) -> None:
    """The customer orders the suggested product: the order goes through the operational
    module (``order_placed`` credits the alert); credited here if that hook did not."""
    from plugins.operational import orders
    from plugins.smart_sales import alerts
    from plugins.smart_sales.models import Alert

    with crm.db.write() as session:
        order = orders.create_order(
            session,
            crm,
            customer_id=customer_id,
            lines=[orders.LineInput(product_id=product_id, quantity=2)],
            ref=f"SS-DEMO-WON-{alert_id}",
            channel="phone",
            order_status="paid",
            owner_id=seller,
            actor_id=seller,
        )
        payload = orders.placed_payload(order, orders.lines_of(session, order.id))
    with crm.db.write() as session:
        if session.scalar(select(Alert.state).where(Alert.id == alert_id)) != "converted":
            alerts.credit_order(crm, session, payload)


def _state_summary(crm: Crm) -> str:
    """``N alerts (new 12, seen 2, ...)``."""
    from plugins.smart_sales.models import ALERT_STATES, Alert

    with crm.db.session() as session:
        counts = dict(
            session.execute(select(Alert.state, func.count()).group_by(Alert.state)).all()
        )
    states = ", ".join(f"{state} {counts[state]}" for state in ALERT_STATES if counts.get(state))
    return f"{sum(counts.values())} alerts ({states})"
