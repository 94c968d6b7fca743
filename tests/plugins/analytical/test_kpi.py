"""KPI series equal a plain-Python computation on generated data (month boundaries, cancelled
orders, other currencies, categories, costs, surveys), and the KPI page shows them."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from core import users
from core.customers.models import Customer
from core.web.app import create_app
from plugins.analytical import kpi, rfm
from plugins.analytical.models import Run
from plugins.operational.models import Order, OrderLine, Product, Survey
from tests.web.conftest import Browser

AS_OF = dt.date(2026, 6, 15)
UTC = dt.UTC
PASSWORD = "Password-123!"
#: (category, cost, currency) of the generated products; None: unknown.
PRODUCTS = (
    ("tea", 40_000, "VND"),
    ("tea", None, "VND"),
    ("coffee", 55_000, "VND"),
    ("cups", 10_000, "VND"),
    (None, 5_000, "VND"),
    ("coffee", 3, "USD"),  # a cost in another currency is no cost in VND
)


@dataclass
class Data:
    """What the generator inserted, for the reference computation."""

    created: dict[int, dt.datetime] = field(default_factory=dict)
    products: dict[int, tuple] = field(default_factory=dict)
    orders: list[dict] = field(default_factory=list)
    surveys: list[tuple[int | None, dt.datetime | None]] = field(default_factory=list)


def _moment(rng: random.Random) -> dt.datetime:
    """A time from 2024-01 to 2026-07, often right at a month boundary."""
    year, month = rng.choice(
        [(y, m) for y in (2024, 2025, 2026) for m in range(1, 13) if (y, m) <= (2026, 7)]
    )
    first = dt.datetime(year, month, 1, tzinfo=UTC)
    following = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return rng.choice(
        (
            first,  # the first instant of the month
            following - dt.timedelta(seconds=1),  # the last second
            first + dt.timedelta(days=rng.randrange(28), hours=rng.randrange(24)),
            dt.datetime(2026, 6, 15, 23, 59, 59, tzinfo=UTC),  # the end of AS_OF
            dt.datetime(2026, 6, 16, 0, 0, tzinfo=UTC),  # just after it
        )
    )


def _customers(session, rng: random.Random, data: Data, count: int) -> list[int]:
    ids = []
    for i in range(count):
        created = _moment(rng)
        cid = session.execute(
            insert(Customer).values(
                kind="person",
                display_name=f"K{i}",
                search_key=f"k{i}",
                archived=False,
                created_at=created,
                updated_at=created,
                version=1,
            )
        ).inserted_primary_key[0]
        data.created[cid] = created
        ids.append(cid)
    return ids


def _products(session, data: Data) -> list[int]:
    now = dt.datetime.now(UTC)
    for n, (category, cost, currency) in enumerate(PRODUCTS):
        pid = session.execute(
            insert(Product).values(
                sku=f"P{n}",
                name=f"Product {n}",
                category=category,
                price_minor=100_000,
                cost_minor=cost,
                currency=currency,
                active=True,
                created_at=now,
                updated_at=now,
                version=1,
            )
        ).inserted_primary_key[0]
        data.products[pid] = (category, cost, currency)
    return list(data.products)


def _orders(session, rng: random.Random, data: Data, customers: list[int], products: list[int]):
    now = dt.datetime.now(UTC)
    for cid in customers:
        for _ in range(rng.choice((0, 1, 2, 3, 5, 8))):
            placed = _moment(rng)
            status = rng.choices(("delivered", "paid", "cancelled", "returned"), (6, 2, 1, 1))[0]
            currency = rng.choices(("VND", "USD"), (9, 1))[0]
            lines = [
                (rng.choice([*products, None]), rng.randint(1, 3))
                for _ in range(rng.choice((0, 1, 2, 3)))
            ]
            total = rng.choice((90_000, 150_000, 410_000))
            oid = session.execute(
                insert(Order).values(
                    ref=f"O{len(data.orders)}",
                    customer_id=cid,
                    placed_at=placed,
                    status=status,
                    currency=currency,
                    total_minor=total,
                    created_at=now,
                    version=1,
                )
            ).inserted_primary_key[0]
            for product, quantity in lines:
                session.execute(
                    insert(OrderLine).values(
                        order_id=oid,
                        product_id=product,
                        quantity=quantity,
                        unit_price_minor=30_000,
                        amount_minor=30_000 * quantity,
                    )
                )
            data.orders.append(
                {
                    "customer": cid,
                    "placed": placed,
                    "status": status,
                    "currency": currency,
                    "total": total,
                    "lines": lines,
                }
            )


def _surveys(session, rng: random.Random, data: Data, customers: list[int]) -> None:
    for n in range(120):
        answered = rng.choice((None, _moment(rng)))
        rating = rng.choice((1, 2, 3, 4, 5, 5)) if answered else None
        session.execute(
            insert(Survey).values(
                customer_id=rng.choice(customers),
                token_hash=f"{n:064d}",
                rating=rating,
                sent_at=dt.datetime(2024, 1, 1, tzinfo=UTC),
                expires_at=dt.datetime(2027, 1, 1, tzinfo=UTC),
                answered_at=answered,
            )
        )
        data.surveys.append((rating, answered))


def generate(crm, seed: int = 11, customers: int = 90) -> Data:
    """Customers, products, orders with lines and surveys, inserted with plain INSERTs."""
    rng = random.Random(seed)
    data = Data()
    with crm.db.write() as session:
        ids = _customers(session, rng, data, customers)
        products = _products(session, data)
        _orders(session, rng, data, ids, products)
        _surveys(session, rng, data, ids)
    return data


# --- the reference: plain Python over what was inserted --------------------------------------


def _months(as_of: dt.date) -> list[tuple[int, int]]:
    """The 24 complete months before ``as_of``'s month, then that month, as (year, month)."""
    months = [(as_of.year, as_of.month)]
    while len(months) < 25:
        year, month = months[0]
        months.insert(0, (year - 1, 12) if month == 1 else (year, month - 1))
    return months


def _month_end(year: int, month: int, as_of: dt.date) -> dt.datetime:
    if (year, month) == (as_of.year, as_of.month):
        return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=UTC)
    return dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def _shift(year: int, month: int, back: int) -> tuple[int, int]:
    index = year * 12 + month - 1 - back
    return index // 12, index % 12 + 1


def reference(data: Data, as_of: dt.date) -> dict:
    """Every series computed directly from the generated rows."""
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=UTC)
    months = _months(as_of)
    counted = [
        o for o in data.orders if o["placed"] < end and o["status"] not in ("cancelled", "returned")
    ]

    def ym(moment: dt.datetime) -> tuple[int, int]:
        return moment.year, moment.month

    first: dict[int, dt.datetime] = {}
    for o in counted:
        first[o["customer"]] = min(first.get(o["customer"], o["placed"]), o["placed"])
    buyers_by_month: dict[tuple[int, int], set[int]] = {}
    for o in counted:
        buyers_by_month.setdefault(ym(o["placed"]), set()).add(o["customer"])

    result: dict = {"new_customers": [], "new_records": [], "share": [], "customers": []}
    result |= {"rate": [], "base": [], "revenue": [], "cogs": [], "missing": [], "orders": []}
    result |= {"responses": [], "average": [], "csat": []}
    for year, month in months:
        result["new_customers"].append(sum(1 for t in first.values() if ym(t) == (year, month)))
        result["new_records"].append(
            sum(1 for t in data.created.values() if ym(t) == (year, month) and t < end)
        )
        stop = _month_end(year, month, as_of)
        categories: dict[int, set[str]] = {}
        for o in counted:
            if o["placed"] < stop:
                mine = categories.setdefault(o["customer"], set())
                for product, _ in o["lines"]:
                    if product is not None and data.products[product][0] is not None:
                        mine.add(data.products[product][0])
        multi = sum(1 for cats in categories.values() if len(cats) >= 2)
        result["customers"].append(len(categories))
        result["share"].append(multi / len(categories) if categories else None)
        base = set().union(*(buyers_by_month.get(_shift(year, month, k), set()) for k in (1, 2, 3)))
        kept = base & buyers_by_month.get((year, month), set())
        result["base"].append(len(base))
        result["rate"].append(len(kept) / len(base) if base else None)
        in_month = [
            o for o in counted if ym(o["placed"]) == (year, month) and o["currency"] == "VND"
        ]
        result["orders"].append(len(in_month))
        result["revenue"].append(sum(o["total"] for o in in_month))
        cogs = missing = 0
        for o in in_month:
            for product, quantity in o["lines"]:
                known = product is not None and data.products[product][1] is not None
                if known and data.products[product][2] == "VND":
                    cogs += quantity * data.products[product][1]
                else:
                    missing += 1
        result["cogs"].append(cogs)
        result["missing"].append(missing)
        ratings = [
            r for r, t in data.surveys if t is not None and ym(t) == (year, month) and t < end
        ]
        result["responses"].append(len(ratings))
        result["average"].append(sum(ratings) / len(ratings) if ratings else None)
        result["csat"].append(sum(r >= 4 for r in ratings) / len(ratings) if ratings else None)
    window_start = dt.datetime(*months[0], 1, tzinfo=UTC)
    others: dict[str, int] = {}
    for o in counted:
        if o["currency"] != "VND" and o["placed"] >= window_start:
            others[o["currency"]] = others.get(o["currency"], 0) + 1
    result["others"] = others
    return result


def _approx(values: list) -> list:
    return [None if v is None else pytest.approx(v) for v in values]


# --- tests ------------------------------------------------------------------------------------


def test_kpi_series_equal_an_independent_computation(an_crm):
    data = generate(an_crm)
    want = reference(data, AS_OF)
    with an_crm.db.session() as session:
        got = kpi.compute(session, AS_OF, "vnd")
    assert got["months"][0] == "2024-06" and got["months"][-1] == got["partial_month"] == "2026-06"
    assert got["currency"] == "VND"
    assert got["acquisition"]["new_customers"] == want["new_customers"]
    assert got["acquisition"]["new_records"] == want["new_records"]
    assert got["penetration"]["customers"] == want["customers"]
    assert got["penetration"]["share"] == _approx(want["share"])
    assert got["retention"]["base"] == want["base"]
    assert got["retention"]["rate"] == _approx(want["rate"])
    assert got["retention"]["churn"] == _approx(
        [None if r is None else 1 - r for r in want["rate"]]
    )
    assert got["revenue"]["orders"] == want["orders"]
    assert got["revenue"]["revenue_minor"] == want["revenue"]
    assert got["revenue"]["cogs_minor"] == want["cogs"]
    assert got["revenue"]["margin_minor"] == [
        r - c for r, c in zip(want["revenue"], want["cogs"], strict=True)
    ]
    assert got["revenue"]["lines_without_cost"] == want["missing"]
    assert got["other_currencies"] == want["others"] and want["others"]
    assert got["satisfaction"]["responses"] == want["responses"]
    assert got["satisfaction"]["average"] == _approx(want["average"])
    assert got["satisfaction"]["csat"] == _approx(want["csat"])
    # the data really exercised what is compared
    assert sum(want["new_customers"]) > 30 and 0 < max(s or 0 for s in want["share"]) < 1
    assert any(r is not None and 0 < r < 1 for r in want["rate"]) and sum(want["missing"]) > 0
    assert any(o["status"] == "cancelled" and o["placed"].date() <= AS_OF for o in data.orders)


def test_segment_sizes_take_the_latest_rfm_run_of_each_month(an_crm):
    generate(an_crm, seed=4, customers=40)
    with an_crm.db.write() as session:
        older = rfm.refresh(session, dt.date(2026, 4, 10))[0]
        rfm.refresh(session, dt.date(2026, 5, 3))
        _, may = rfm.refresh(session, dt.date(2026, 5, 31))
        rfm.refresh(session, dt.date(2026, 7, 1))  # after AS_OF: left out
        older.summary = None  # a run from before segment counts were stored
        run = kpi.refresh(session, AS_OF, "VND")
        april = {}
        for row in rfm.compute(session, dt.date(2026, 4, 10)):
            april[row["segment"]] = april.get(row["segment"], 0) + 1
    segments = run.summary["segments"]
    assert segments["dates"] == ["2026-04-10", "2026-05-31"]
    for name, *_ in rfm.SEGMENTS:
        assert segments["counts"][name] == [april.get(name, 0), may.get(name, 0)]
    assert sum(april.values()) > 10


def test_refresh_step_stores_one_run_per_date(an_crm):
    from sqlalchemy import func, select

    from plugins.analytical.refresh import run_steps

    data = generate(an_crm, seed=5, customers=20)
    for _ in range(2):
        done = list(run_steps(an_crm, AS_OF, only=["kpi"]))
    assert [d.step.name for d in done] == ["kpi"]
    with an_crm.db.session() as session:
        assert session.scalar(select(func.count()).where(Run.kind == "kpi")) == 1
        stored = kpi.latest_run(session)
        assert stored.as_of == AS_OF and stored.rows == 25
        assert stored.summary["currency"] == an_crm.settings.default_currency == "VND"
        assert stored.summary["revenue"]["revenue_minor"] == reference(data, AS_OF)["revenue"]


# --- the page -------------------------------------------------------------------------------


@pytest.fixture
def browser(an_crm):
    with an_crm.db.write() as session:
        north = users.add_team(session, "north", "Miền Bắc")
        for email, roles in (("lan@example.com", ["analyst"]), ("an@example.com", ["sales"])):
            user = users.create_user(session, email, email.split("@")[0].title(), PASSWORD, roles)
            users.set_team(session, user, north)
    app = create_app(an_crm)

    def make(email: str | None = None) -> Browser:
        client = Browser(TestClient(app, base_url="http://testserver"))
        if email:
            assert client.login(email, PASSWORD).status_code == 303
        return client

    return make


def test_kpi_page_permission_empty_state_and_figures(an_crm, browser):
    anonymous = browser().client.get("/analytical/kpi", follow_redirects=False)
    assert anonymous.status_code in (302, 303) and "/login" in anonymous.headers["location"]
    assert browser("an@example.com").get("/analytical/kpi").status_code == 403
    analyst = browser("lan@example.com")
    empty = analyst.get("/analytical/kpi")
    assert empty.status_code == 200 and "Not computed yet" in empty.text
    assert 'data-chart="' not in empty.text
    data = generate(an_crm, seed=8, customers=50)
    with an_crm.db.write() as session:
        kpi.refresh(session, AS_OF, "VND")
    want = reference(data, AS_OF)
    page = analyst.get("/analytical/kpi")
    assert page.status_code == 200 and "Not computed yet" not in page.text
    assert page.text.count('data-chart="') == 6
    assert page.text.count("How is this computed?") >= 6
    assert f"₫{want['revenue'][-2]:,}" in page.text  # revenue of the last complete month
    assert f'data-value="{want["new_customers"][-1]}"' in page.text
