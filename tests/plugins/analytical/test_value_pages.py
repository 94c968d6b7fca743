"""The classes and profitability page, its CSV, the 360 panels and the customer list filters:
permissions, record rules, and figures equal to the stored snapshots."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from sqlalchemy import insert, select

from plugins.analytical import classes, profitability
from plugins.analytical.models import CustomerClass, Profit
from plugins.operational.models import Order, OrderLine, Product
from tests.plugins.analytical.helpers import add_customer, add_people
from tests.web.conftest import ids_on

AS_OF = dt.date(2026, 6, 30)
RULES = {"new_days": 90, "loyal_min_orders": 3, "loyal_days": 365, "potential_days": 90}
CSV_COLUMNS = (
    "customer_id",
    "name",
    "revenue_minor",
    "cogs_minor",
    "cost_to_serve_minor",
    "margin_minor",
    "tier",
    "lines_without_cost",
    "categories",
    "preferred_channel",
)
PARAMS = {
    "cost_per_ticket": 50_000,
    "cost_per_interaction": 5_000,
    "cost_per_order": 0,
    "tier_a_percent": 80,
    "tier_b_percent": 95,
}


@pytest.fixture
def people(an_crm) -> dict[str, int]:
    """an, chi: salespeople of north and south; dung: north manager; mai: marketer."""
    made = add_people(
        an_crm,
        {"north": "North", "south": "South"},
        [
            ("an@example.com", "north", ["sales"]),
            ("chi@example.com", "south", ["sales"]),
            ("dung@example.com", "north", ["manager"]),
            ("mai@example.com", None, ["marketing"]),
        ],
    )
    return {email.split("@")[0]: user_id for email, user_id in made.items()}


def _seed(crm, people: dict[str, int]) -> dict[str, list[int]]:
    """Customers of an (north), chi (south) and nobody, with 1-4 orders each; one product
    without cost, one order in USD, one customer whose name looks like a formula."""
    now = dt.datetime.now(dt.UTC)
    owned: dict[str, list[int]] = {"an": [], "chi": [], "nobody": []}
    with crm.db.write() as session:
        costly = session.execute(
            insert(Product).values(
                sku="TEA", name="Tea", category="tea", cost_minor=30_000, currency="VND", version=1
            )
        ).inserted_primary_key[0]
        free = session.execute(
            insert(Product).values(sku="GIFT", name="Gift", category="gifts", currency="VND")
        ).inserted_primary_key[0]
        number = 0
        for owner, names in (
            ("an", ["=HYPERLINK(1)", "An 2", "An 3"]),
            ("chi", ["Chi 1", "Chi 2", "Chi 3"]),
            ("nobody", ["Pool"]),
        ):
            for name in names:
                number += 1
                cid = add_customer(session, name, people.get(owner))
                owned[owner].append(cid)
                for k in range(number % 4 + 1):
                    oid = session.execute(
                        insert(Order).values(
                            ref=f"R{cid}-{k}",
                            customer_id=cid,
                            placed_at=dt.datetime(2026, 6, 1 + k, tzinfo=dt.UTC)
                            - dt.timedelta(days=100 * (number % 2)),
                            status="paid",
                            currency="USD" if (number, k) == (2, 0) else "VND",
                            total_minor=100_000 * number,
                            channel="zalo",
                            created_at=now,
                            version=1,
                        )
                    ).inserted_primary_key[0]
                    session.execute(
                        insert(OrderLine).values(
                            order_id=oid,
                            product_id=free if number == 3 else costly,
                            quantity=1,
                            unit_price_minor=100_000,
                            amount_minor=100_000,
                        )
                    )
    return owned


def _refresh(crm) -> None:
    with crm.db.write() as session:
        classes.refresh(session, AS_OF, RULES)
        profitability.refresh(session, AS_OF, "VND", PARAMS)


def _rows(html: str, table: str) -> str:
    return re.search(rf'<table[^>]*id="{table}".*?</table>', html, re.S).group(0)


def test_the_page_needs_a_login_and_the_permission(an_crm, people, browser):
    anonymous = browser().get("/analytical/value", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    assert browser("an@example.com").get("/analytical/value").status_code == 403
    assert browser("an@example.com").get("/analytical/value.csv").status_code == 403
    assert browser("mai@example.com").get("/analytical/value").status_code == 200
    assert browser("mai@example.com").get("/analytical/value.csv").status_code == 403


def test_the_page_renders_without_any_snapshot(an_crm, people, browser):
    page = browser("admin@example.com", "Admin-pass-123").get("/analytical/value")
    assert page.status_code == 200
    assert page.text.count("Not computed yet") == 2
    assert 'id="top-table"' not in page.text


def test_the_page_shows_the_snapshots_within_record_rules(an_crm, people, browser):
    owned = _seed(an_crm, people)
    _refresh(an_crm)
    with an_crm.db.session() as session:
        profits = {p.customer_id: p for p in session.scalars(select(Profit))}
        run = profitability.latest_run(session)
        summary = run.summary
    admin = browser("admin@example.com", "Admin-pass-123").get("/analytical/value").text
    assert "Not computed yet" not in admin and 'data-chart-type="line"' in admin
    top = _rows(admin, "top-table")
    assert set(map(int, re.findall(r'data-id="(\d+)"', top))) == set(profits)
    best = max(profits.values(), key=lambda p: (p.margin_minor, -p.customer_id))
    assert re.findall(r'data-id="(\d+)"', top)[0] == str(best.customer_id)
    assert f'href="/ui/customer/{best.customer_id}"' in top
    assert "Zalo" in top and "gifts" in top and "⚠" in top
    assert 'id="missing-cost"' in admin and 'id="left-out"' in admin
    assert summary["orders_left_out"] == 1 and summary["lines_without_cost"] > 0
    tiers = _rows(admin, "tier-table")
    for tier in "ABC":
        row = re.search(rf'data-tier="{tier}">.*?</tr>', tiers, re.S).group(0)
        assert f"<td>{summary['tiers'][tier]['customers']}</td>" in row
    class_table = _rows(admin, "class-table")
    for name, n in _class_counts(an_crm).items():
        row = re.search(rf'data-class="{name}">.*?</tr>', class_table, re.S).group(0)
        assert f"<td>{n}</td>" in row
    manager = browser("dung@example.com").get("/analytical/value").text
    seen = set(map(int, re.findall(r'data-id="(\d+)"', _rows(manager, "top-table"))))
    assert seen == (set(owned["an"]) | set(owned["nobody"])) & set(profits)
    assert "/analytical/value.csv" in manager


def _class_counts(crm) -> dict[str, int]:
    with crm.db.session() as session:
        return classes.latest_run(session).summary["classes"]


def test_csv_export_follows_record_rules_and_neutralises_formulas(an_crm, people, browser):
    owned = _seed(an_crm, people)
    _refresh(an_crm)
    with an_crm.db.session() as session:
        profits = {p.customer_id: p for p in session.scalars(select(Profit))}
    response = browser("admin@example.com", "Admin-pass-123").get("/analytical/value.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert {int(r["customer_id"]): int(r["margin_minor"]) for r in rows} == {
        c: p.margin_minor for c, p in profits.items()
    }
    assert {int(r["customer_id"]): r["tier"] for r in rows} == {
        c: p.tier for c, p in profits.items()
    }
    assert "'=HYPERLINK(1)" in {r["name"] for r in rows}
    manager = browser("dung@example.com").get("/analytical/value.csv")
    ids = {int(r["customer_id"]) for r in csv.DictReader(io.StringIO(manager.text))}
    assert ids == (set(owned["an"]) | set(owned["nobody"])) & set(profits)
    assert not ids & set(owned["chi"])


def test_the_customer_360_panels(an_crm, people, browser):
    owned = _seed(an_crm, people)
    admin = browser("admin@example.com", "Admin-pass-123")
    customer = owned["chi"][0]
    assert "Not computed yet" in admin.get(f"/ui/slots/analytical.class/{customer}").text
    assert "Not computed yet" in admin.get(f"/ui/slots/analytical.value/{customer}").text
    _refresh(an_crm)
    with an_crm.db.session() as session:
        row = session.scalars(select(CustomerClass).where(CustomerClass.customer_id == customer))
        klass = row.one()
        profit = session.scalars(select(Profit).where(Profit.customer_id == customer)).one()
    panel = admin.get(f"/ui/slots/analytical.class/{customer}").text
    label = classes.CLASS_LABELS[klass.klass]
    assert f'data-field="class">{label}<' in panel
    why = classes.parse_reason(klass.reason)
    assert any(str(v) in panel for v in why.values())
    assert "Care plan" in panel
    value = admin.get(f"/ui/slots/analytical.value/{customer}").text
    assert f'data-field="tier">Value tier {profit.tier}<' in value
    margin = re.search(r'data-field="margin">([^<]+)<', value).group(1)
    assert re.sub(r"\D", "", margin) == str(abs(profit.margin_minor))
    assert "Zalo" in value
    # a salesperson sees the class panel of their customers but not the value panel
    an = browser("an@example.com")
    assert an.get(f"/ui/slots/analytical.class/{owned['an'][1]}").status_code == 200
    assert an.get(f"/ui/slots/analytical.value/{owned['an'][1]}").status_code == 403


def test_the_customer_list_filters_by_class_and_tier(an_crm, people, browser):
    owned = _seed(an_crm, people)
    admin = browser("admin@example.com", "Admin-pass-123")
    assert ids_on(admin.get("/ui/customer", params={"analytical_class": "loyal"}).text) == []
    _refresh(an_crm)
    with an_crm.db.session() as session:
        by_class = session.execute(select(CustomerClass.customer_id, CustomerClass.klass)).all()
        by_tier = session.execute(select(Profit.customer_id, Profit.tier)).all()
    page = admin.get("/ui/customer").text
    assert 'name="analytical_class"' in page and 'name="analytical_tier"' in page
    seen_classes = set()
    for name in classes.CLASSES:
        expected = {cid for cid, klass in by_class if klass == name}
        seen_classes |= {name} if expected else set()
        got = ids_on(admin.get("/ui/customer", params={"analytical_class": name}).text)
        assert set(got) == expected
    assert len(seen_classes) >= 2  # the filter really narrows
    for tier in "ABC":
        expected = {cid for cid, t in by_tier if t == tier}
        got = ids_on(admin.get("/ui/customer", params={"analytical_tier": tier}).text)
        assert set(got) == expected
    assert ids_on(admin.get("/ui/customer", params={"analytical_class": "bogus"}).text) == []
    manager = browser("dung@example.com")
    for tier in "ABC":
        expected = {cid for cid, t in by_tier if t == tier and cid not in owned["chi"]}
        got = ids_on(manager.get("/ui/customer", params={"analytical_tier": tier}).text)
        assert set(got) == expected
