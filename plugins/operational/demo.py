"""Demo data of the operational module: products, a year of orders, a pipeline, activities,
interactions, tickets and answered surveys, generated from a seed (same seed, same data)."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from typing import TYPE_CHECKING

from sqlalchemy import select

from core.db import utcnow

if TYPE_CHECKING:
    from core.runtime import Crm

#: sku, name, category, price (VND), upgrade to
PRODUCTS = (
    ("CF-250", "Cà phê rang xay 250g", "Cà phê", 95_000, "CF-500"),
    ("CF-500", "Cà phê rang xay 500g", "Cà phê", 175_000, "CF-1KG"),
    ("CF-1KG", "Cà phê rang xay 1kg", "Cà phê", 320_000, None),
    ("TEA-OL", "Trà ô long Bảo Lộc", "Trà", 150_000, "TEA-OL-GIFT"),
    ("TEA-OL-GIFT", "Hộp quà trà ô long", "Trà", 390_000, None),
    ("TEA-SEN", "Trà sen Tây Hồ", "Trà", 450_000, None),
    ("AD-LUA", "Áo dài lụa tơ tằm", "Thời trang", 2_450_000, None),
    ("NON-LA", "Nón lá Huế", "Thời trang", 120_000, None),
    ("KHAN-LUA", "Khăn lụa Vạn Phúc", "Thời trang", 380_000, None),
    ("GOM-BT", "Bình gốm Bát Tràng", "Gốm sứ", 680_000, "GOM-BT-L"),
    ("GOM-BT-L", "Bình gốm Bát Tràng cỡ lớn", "Gốm sứ", 1_250_000, None),
    ("TAM-SON", "Tranh sơn mài", "Mỹ nghệ", 3_200_000, None),
    ("NUOC-MAM", "Nước mắm Phú Quốc 40 độ đạm", "Thực phẩm", 135_000, None),
    ("HAT-DIEU", "Hạt điều rang muối 500g", "Thực phẩm", 210_000, None),
    ("ZAFARAN", "زعفران (Saffron) 1g", "Thực phẩm", 260_000, None),
)
TICKETS = 40
#: About 30 months of orders: enough for cohorts, seasonality and a lifetime-value holdout.
HISTORY_DAYS = 900
#: Relative sales by month: Tết (January, February) and the year end sell most.
SEASON = {
    1: 1.8,
    2: 1.5,
    3: 0.8,
    4: 0.8,
    5: 0.9,
    6: 0.9,
    7: 0.9,
    8: 1.0,
    9: 1.0,
    10: 1.1,
    11: 1.3,
    12: 1.6,
}
CHANNELS = ("shop", "website", "zalo", "facebook", "phone")
STAGES = ("new", "qualified", "proposal", "negotiation", "won", "lost")
TICKET_SUBJECTS = (
    "Giao hàng chậm",
    "Sản phẩm bị vỡ khi nhận",
    "Muốn đổi size áo dài",
    "Hỏi về hóa đơn VAT",
    "Không nhận được mã giảm giá",
    "سفارش من هنوز نرسیده است",
)
INTERACTION_SUBJECTS = (
    ("call", "phone", "Gọi tư vấn sản phẩm"),
    ("chat", "zalo", "Hỏi giá sỉ qua Zalo"),
    ("chat", "facebook", "Nhắn tin hỏi khuyến mãi"),
    ("email", "email", "Gửi báo giá"),
    ("visit", "in_person", "Ghé cửa hàng xem hàng"),
    ("meeting", "in_person", "Gặp bàn hợp đồng đại lý"),
)


def load(crm: Crm, seed: int) -> str:
    """Create the demo records unless they exist; returns what was loaded."""
    from core.customers.models import Customer
    from core.models import User
    from plugins.operational.models import Product

    rng = random.Random(seed)
    with crm.db.write() as session:
        if session.scalar(select(Product.id).where(Product.sku == PRODUCTS[0][0])) is not None:
            return "already loaded"
        customers = list(
            session.scalars(
                select(Customer.id).where(Customer.kind == "person").order_by(Customer.id)
            )
        )
        staff = {
            u.email: u
            for u in session.scalars(select(User).where(User.email.like("%@demo.example")))
        }
        products = _products(session, crm.settings.default_currency)
        orders, lines = _orders(session, rng, customers, products, staff)
        deals = _pipeline(session, rng, customers, staff)
        done = _activities_and_interactions(session, rng, customers, staff)
        tickets, answered = _tickets(session, rng, customers, staff)
    return (
        f"{len(products)} products, {orders} orders ({lines} lines), {deals} opportunities, "
        f"{done} interactions, {tickets} tickets ({answered} surveys answered)"
    )


def _products(session, currency: str) -> dict[str, object]:
    from plugins.operational.models import Product

    made = {}
    for sku, name, category, price, _ in PRODUCTS:
        made[sku] = Product(
            sku=sku,
            name=name,
            category=category,
            price_minor=price,
            cost_minor=price * 62 // 100,
            currency=currency,
        )
    session.add_all(made.values())
    session.flush()
    for sku, *_, upgrade in PRODUCTS:
        if upgrade:
            made[sku].upgrade_to_id = made[upgrade].id
    session.flush()
    return made


def _orders(
    session, rng: random.Random, customers: list[int], products: dict, staff: dict
) -> tuple[int, int]:
    from plugins.operational.models import Order, OrderLine

    now = utcnow()
    catalogue = list(products.values())
    sellers = [u.id for e, u in staff.items() if e.startswith("sales")] or [None]
    count = lines = 0
    for customer_id in customers:
        joined = rng.randint(20, HISTORY_DAYS)  # customers arrive over time: monthly cohorts
        orders = rng.choice((0, 1, 1, 2, 3, 5, 8)) + (rng.choice((0, 1, 3)) if joined > 365 else 0)
        for _ in range(orders):
            count += 1
            placed = _order_time(rng, now, joined)
            picked = rng.sample(catalogue, rng.randint(1, 4))
            # products bought together, so the smart-selling module finds real patterns
            if products["CF-500"] in picked and rng.random() < 0.6:
                picked.append(products["HAT-DIEU"])
            order = Order(
                ref=f"DEMO-{count:06d}",
                customer_id=customer_id,
                channel=rng.choice(CHANNELS),
                status=rng.choices(("delivered", "paid", "cancelled", "returned"), (85, 8, 5, 2))[
                    0
                ],
                placed_at=placed,
                currency="VND",
                owner_id=rng.choice(sellers),
            )
            session.add(order)
            session.flush()
            total = cost = 0
            for product in dict.fromkeys(picked):
                quantity = rng.choice((1, 1, 1, 2, 3))
                discount = rng.choice((0, 0, 0, product.price_minor * quantity // 10))
                amount = product.price_minor * quantity - discount
                total += amount
                cost += product.cost_minor * quantity
                session.add(
                    OrderLine(
                        order_id=order.id,
                        product_id=product.id,
                        quantity=quantity,
                        unit_price_minor=product.price_minor,
                        discount_minor=discount,
                        amount_minor=amount,
                    )
                )
                lines += 1
            order.total_minor, order.cost_minor = total, cost
    session.flush()
    return count, lines


def _order_time(rng: random.Random, now: dt.datetime, joined_days: int) -> dt.datetime:
    """A time within the customer's ``joined_days``, months weighted by :data:`SEASON`."""
    peak = max(SEASON.values())
    while True:
        placed = now - dt.timedelta(days=rng.randint(0, joined_days), minutes=rng.randint(0, 1439))
        if rng.random() * peak < SEASON[placed.month]:
            return placed


def _pipeline(session, rng: random.Random, customers: list[int], staff: dict) -> int:
    from plugins.operational import pipeline
    from plugins.operational.models import LostReason

    sellers = [u for e, u in staff.items() if e.startswith("sales")]
    reasons = list(session.scalars(select(LostReason.id)))
    if not sellers or not customers:
        return 0
    titles = (
        "Đơn quà Tết doanh nghiệp",
        "Đại lý cà phê",
        "Hợp đồng đồng phục",
        "Quà tặng hội nghị",
        "Cung cấp trà cho khách sạn",
        "Đơn hàng xuất khẩu",
    )
    for number in range(30):
        owner = rng.choice(sellers)
        opportunity = pipeline.create(
            session,
            {
                "customer_id": rng.choice(customers),
                "title": f"{rng.choice(titles)} #{number + 1}",
                "owner_id": owner.id,
                "team_id": owner.team_id,
                "expected_revenue_minor": rng.randrange(5, 300) * 1_000_000,
                "expected_close": (utcnow() + dt.timedelta(days=rng.randint(-20, 90))).date(),
            },
            "VND",
        )
        stage = rng.choice(STAGES)
        if stage != "new":
            pipeline.update(
                session,
                opportunity,
                {
                    "stage": stage,
                    "lost_reason_id": rng.choice(reasons) if stage == "lost" else None,
                },
            )
    return 30


def _activities_and_interactions(
    session, rng: random.Random, customers: list[int], staff: dict
) -> int:
    from plugins.operational import activities, interactions

    users = [u for u in staff.values()] or [None]
    logged = 0
    for customer_id in customers[:150]:
        for _ in range(rng.randint(1, 4)):
            kind, channel, subject = rng.choice(INTERACTION_SUBJECTS)
            who = rng.choice(users)
            interactions.log(
                session,
                customer_id,
                kind,
                channel,
                subject,
                direction=rng.choice(("inbound", "outbound")),
                user_id=who.id if who else None,
                occurred_at=utcnow()
                - dt.timedelta(days=rng.randint(0, 200), hours=rng.randint(0, 23)),
            )
            logged += 1
    for email, user in staff.items():
        if not email.startswith(("sales", "service")):
            continue
        for number in range(6):
            activities.schedule(
                session,
                {
                    "kind": rng.choice(("call", "meeting", "email", "todo")),
                    "subject": f"Liên hệ lại khách hàng #{number + 1}",
                    "customer_id": rng.choice(customers) if customers else None,
                    "user_id": user.id,
                    "due_at": utcnow()
                    + dt.timedelta(days=rng.randint(-5, 14), hours=rng.randint(1, 8)),
                },
            )
    return logged


def _tickets(session, rng: random.Random, customers: list[int], staff: dict) -> tuple[int, int]:
    from plugins.operational.models import SlaPolicy, Survey, Ticket

    policies = {p.priority: p for p in session.scalars(select(SlaPolicy))}
    agent = staff.get("service@demo.example")
    answered = 0
    for number in range(TICKETS):
        created = utcnow() - dt.timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23))
        priority = rng.choice(("low", "normal", "normal", "high", "urgent"))
        policy = policies.get(priority)
        status = rng.choice(("new", "open", "pending", "resolved", "closed"))
        ticket = Ticket(
            customer_id=rng.choice(customers),
            subject=rng.choice(TICKET_SUBJECTS),
            description="Khách hàng phản ánh qua tổng đài.",
            priority=priority,
            status=status,
            assignee_id=agent.id if agent else None,
            created_at=created,
            first_response_due=created + dt.timedelta(minutes=policy.first_response_minutes)
            if policy
            else None,
            resolution_due=created + dt.timedelta(minutes=policy.resolution_minutes)
            if policy
            else None,
        )
        if status != "new":
            ticket.first_responded_at = created + dt.timedelta(minutes=rng.randint(5, 600))
        if status in ("resolved", "closed"):
            ticket.resolved_at = created + dt.timedelta(hours=rng.randint(1, 96))
        session.add(ticket)
        session.flush()
        if ticket.resolved_at is not None:
            token = hashlib.sha256(f"demo-{seed_of(rng)}-{number}".encode()).hexdigest()
            survey = Survey(
                customer_id=ticket.customer_id,
                ticket_id=ticket.id,
                token_hash=token,
                sent_at=ticket.resolved_at,
                expires_at=ticket.resolved_at + dt.timedelta(days=14),
            )
            if rng.random() < 0.7:
                survey.rating = rng.choices((1, 2, 3, 4, 5), (1, 1, 2, 5, 8))[0]
                survey.answered_at = ticket.resolved_at + dt.timedelta(hours=rng.randint(1, 48))
                answered += 1
            session.add(survey)
    session.flush()
    return TICKETS, answered


def seed_of(rng: random.Random) -> int:
    """A number drawn from ``rng`` (demo survey tokens are never handed out: only hashes)."""
    return rng.randrange(1 << 30)
