"""Alert and sales performance: exact figures from a small history worked out by hand, record
scopes (a seller sees their own row, a manager their team, an analyst everything), periods,
other currencies and pipelines with stages of their own.

The history (``seed``), period 2026-01-01 .. 2026-03-20, VND (no minor unit):

Orders (owner, customer, day, total, cost):
  an:   O1 C1 01-10 10,000,000 / 6,000,000   O2 C1 02-15 4,000,000 / no cost
        O3 C4 03-05 6,000,000 / 3,500,000    O12 C1 03-20 23:30 1,000,000 / 600,000
        (left out: O4 cancelled, O5 in USD, O13 03-21 00:00 after the period)
  binh: O6 C2 01-20 8,000,000 / 5,000,000    O7 C2 03-01 2,000,000 / 1,500,000
        (left out: O8 2025-12-20 before the period)
  chi:  O9 C3 02-05 3,000,000 / 2,000,000    (left out: O10 returned)
  none: O11 C4 02-10 1,000,000 / 900,000
Deals closed in the period: an won 12M (01-25) and 8M (03-02), lost one (02-10); binh lost two;
chi won 3M in the south team's own "signed" stage (a "won"-named stage that pipeline does not
have counts for nothing); mai won one in USD. (Left out: chi's deal won in 2025, an's open one.)
Alerts: see ``alerts``; the converted ones name the orders that converted them (A1 and A8: O1,
A5: O9), so that their credit counts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import insert, select

from core import users
from plugins.operational.models import Opportunity, Order, Stage
from plugins.smart_sales import performance
from plugins.smart_sales.performance import PerformanceError
from tests.plugins.collaborative.helpers import PASSWORD
from tests.plugins.smart_sales import helpers
from tests.plugins.smart_sales.helpers import ADMIN, AN, BINH, CHI, MAI

START, END = dt.date(2026, 1, 1), dt.date(2026, 3, 20)
ANALYST = "analyst@example.com"
M = 1_000_000


def at(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2026) -> dt.datetime:
    """A UTC time in 2026 (or ``year``)."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def set_scope(crm: Any, role: str, scope: str) -> None:
    """Give ``role`` the record scope ``scope``."""
    with crm.db.write() as session:
        users.set_role_scope(session, role, scope)


def seed(crm: Any) -> dict[str, int]:
    """The history of the module docstring; ids by name (people, customers, products, teams)."""
    p = dict(crm.people)
    an, binh, chi, mai = p[AN], p[BINH], p[CHI], p[MAI]
    now = dt.datetime.now(dt.UTC)
    with crm.db.write() as session:
        analyst = users.create_user(session, ANALYST, "Đặng Phân Tích", PASSWORD, ["analyst"])
        session.flush()
        ids: dict[str, int] = {"analyst": analyst.id}
        ids["C1"] = helpers.customer(session, "Công ty Ánh Dương", an)
        ids["C2"] = helpers.customer(session, "Cửa hàng Bình Minh", binh)
        ids["C3"] = helpers.customer(session, "شرکت پارس", chi)
        ids["C4"] = helpers.customer(session, "Khách lẻ Hà Nội", None)
        ids["P1"] = helpers.product(session, crm, "KRF-1", name="Máy lọc nước Karofi")
        ids["P2"] = helpers.product(session, crm, "KRF-LOI", name="Bộ lõi lọc thay thế")
        c1, c2, c3, c4 = ids["C1"], ids["C2"], ids["C3"], ids["C4"]
        orders = [
            # ref, owner, customer, placed, total, cost, status, currency
            ("O1", an, c1, at(1, 10), 10 * M, 6 * M, "paid", "VND"),
            ("O2", an, c1, at(2, 15), 4 * M, None, "placed", "VND"),
            ("O3", an, c4, at(3, 5), 6 * M, 3_500_000, "paid", "VND"),
            ("O4", an, c1, at(2, 20), 9 * M, 1 * M, "cancelled", "VND"),
            ("O5", an, c1, at(3, 10), 50_000, None, "paid", "USD"),
            ("O12", an, c1, at(3, 20, 23, 30), 1 * M, 600_000, "paid", "VND"),
            ("O13", an, c1, at(3, 21, 0, 0), 7 * M, 1 * M, "paid", "VND"),
            ("O6", binh, c2, at(1, 20), 8 * M, 5 * M, "paid", "VND"),
            ("O7", binh, c2, at(3, 1), 2 * M, 1_500_000, "paid", "VND"),
            ("O8", binh, c2, at(12, 20, year=2025), 5 * M, 1 * M, "paid", "VND"),
            ("O9", chi, c3, at(2, 5), 3 * M, 2 * M, "paid", "VND"),
            ("O10", chi, c3, at(3, 15), 1 * M, 400_000, "returned", "VND"),
            ("O11", None, c4, at(2, 10), 1 * M, 900_000, "placed", "VND"),
        ]
        session.execute(
            insert(Order),
            [
                {
                    "ref": ref,
                    "owner_id": owner,
                    "customer_id": customer,
                    "placed_at": placed,
                    "total_minor": total,
                    "cost_minor": cost,
                    "status": status,
                    "currency": currency,
                    "created_at": now,
                    "version": 1,
                }
                for ref, owner, customer, placed, total, cost, status, currency in orders
            ],
        )
        refs = [o[0] for o in orders]
        ids.update(session.execute(select(Order.ref, Order.id).where(Order.ref.in_(refs))).all())
        south = p["team:south"]
        session.execute(
            insert(Stage),
            [
                {"team_id": south, "name": name, "label": name, "sequence": n, "kind": kind}
                for n, (name, kind) in enumerate(
                    (("talk", "open"), ("signed", "won"), ("gone", "lost")), 1
                )
            ],
        )
        deals = [
            # owner, team, stage, closed, expected, currency
            (an, None, "won", at(1, 25), 12 * M, "VND"),
            (an, None, "won", at(3, 2), 8 * M, "VND"),
            (an, None, "lost", at(2, 10), 5 * M, "VND"),
            (an, None, "proposal", None, 4 * M, "VND"),
            (binh, None, "lost", at(2, 11), 2 * M, "VND"),
            (binh, None, "lost", at(3, 12), 2 * M, "VND"),
            (chi, south, "signed", at(2, 1), 3 * M, "VND"),
            (chi, south, "won", at(2, 2), 9 * M, "VND"),
            (chi, south, "signed", at(11, 1, year=2025), 6 * M, "VND"),
            (mai, None, "won", at(3, 3), 1_000, "USD"),
        ]
        session.execute(
            insert(Opportunity),
            [
                {
                    "customer_id": c1,
                    "title": f"Deal {n}",
                    "owner_id": owner,
                    "team_id": team,
                    "stage": stage,
                    "closed_at": closed,
                    "expected_revenue_minor": expected,
                    "currency": currency,
                    "probability": 50,
                    "probability_overridden": False,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
                for n, (owner, team, stage, closed, expected, currency) in enumerate(deals)
            ],
        )
        for name, values in alerts(ids, an, binh, chi).items():
            ids[name] = helpers.add_alert(session, **values)
    return ids


def alerts(ids: dict[str, int], an: int, binh: int, chi: int) -> dict[str, dict[str, Any]]:
    """The alerts of the history, in every state."""
    c1, c2, c3, c4, p1, p2 = (ids[k] for k in ("C1", "C2", "C3", "C4", "P1", "P2"))
    o1, o9 = ids["O1"], ids["O9"]
    return {
        "A1": dict(customer_id=c1, product_id=p1, owner_id=an, raised_at=at(1, 5),
                   state="converted", acted_at=at(1, 6), credited_minor=2 * M,
                   expected_value_minor=600_000, closed_at=at(1, 15), converted_order_id=o1),
        "A2": dict(customer_id=c1, product_id=p2, owner_id=an, raised_at=at(1, 20),
                   state="dismissed", expected_value_minor=300_000),
        "A3": dict(customer_id=c2, product_id=p1, owner_id=binh, raised_at=at(2, 3),
                   kind="up_sell", state="acted", acted_at=at(2, 4), expected_value_minor=900_000),
        "A4": dict(customer_id=c2, product_id=p2, owner_id=binh, raised_at=at(2, 10),
                   kind="up_sell", state="expired", expected_value_minor=100_000),
        "A5": dict(customer_id=c3, owner_id=chi, raised_at=at(3, 1), kind="churn",
                   state="converted", credited_minor=3 * M, expected_value_minor=5 * M,
                   closed_at=at(3, 10), converted_order_id=o9),
        "A6": dict(customer_id=c4, owner_id=None, raised_at=at(3, 2), kind="churn",
                   expected_value_minor=1 * M),
        "A7": dict(customer_id=c3, product_id=p1, owner_id=chi, raised_at=at(3, 5),
                   currency="USD", expected_value_minor=50),
        "A8": dict(customer_id=c1, product_id=p1, owner_id=an, raised_at=at(12, 1, year=2025),
                   state="converted", credited_minor=9 * M, expected_value_minor=1 * M,
                   closed_at=at(12, 5, year=2025), converted_order_id=o1),
        "A9": dict(customer_id=c2, product_id=p2, owner_id=binh, raised_at=at(3, 18),
                   state="seen", expected_value_minor=200_000),
    }  # fmt: skip


@pytest.fixture
def perf(ss_crm) -> dict[str, int]:
    """``ss_crm`` with the history of the module docstring."""
    return seed(ss_crm)


def sales(crm: Any, email: str, by: str = "owner", **period: Any) -> dict[str, Any]:
    """``email``'s sales performance over the period (2026-01-01 .. 2026-03-20 by default)."""
    with crm.db.session() as session:
        return performance.sales_performance(
            crm,
            session,
            helpers.user(crm, email),
            start=period.get("start", START),
            end=period.get("end", END),
            by=by,
        )


def alert_figures(crm: Any, email: str, by: str = "kind", **period: Any) -> dict[str, Any]:
    """``email``'s alert performance over the period."""
    with crm.db.session() as session:
        return performance.alert_performance(
            crm,
            session,
            helpers.user(crm, email),
            start=period.get("start", START),
            end=period.get("end", END),
            by=by,
        )


def rows(data: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    """The rows by key."""
    return {row["key"]: row for row in data["rows"]}


def pick(row: dict[str, Any], *names: str) -> tuple[Any, ...]:
    """Some figures of a row."""
    return tuple(row[n] for n in names)


# --- sales performance --------------------------------------------------------------------------

FIGURES = ("orders", "revenue_minor", "margin_minor", "costed_orders", "orders_without_cost")
DEALS = ("won", "lost", "win_rate", "won_value_minor", "average_won_minor")
TREND = ("this_month_minor", "last_month_minor", "change", "direction")


def test_sales_per_salesperson_are_worked_out_by_hand(ss_crm, perf):
    p = ss_crm.people
    data = sales(ss_crm, ADMIN)
    assert data["currency"] == "VND" and data["by"] == "owner"
    assert [r["key"] for r in data["rows"]] == [p[AN], p[BINH], p[CHI], None, p[MAI]]
    got = rows(data)
    an, binh, chi, nobody, mai = (got[k] for k in (p[AN], p[BINH], p[CHI], None, p[MAI]))
    assert an["label"] == "Nguyễn Văn An" and nobody["label"] is None
    # an: O1 + O2 + O3 + O12; margin over O1, O3, O12 (O2 has no cost)
    assert pick(an, *FIGURES) == (4, 21 * M, 6_900_000, 3, 1)
    assert an["margin_rate"] == pytest.approx(6.9 / 17)
    assert an["average_order_minor"] == 5_250_000
    assert an["other_currency_orders"] == 1
    assert pick(an, *DEALS) == (2, 1, pytest.approx(2 / 3), 20 * M, 10 * M)
    assert pick(an, *TREND) == (7 * M, 4 * M, pytest.approx(0.75), "up")
    assert pick(binh, *FIGURES) == (2, 10 * M, 3_500_000, 2, 0)
    assert binh["average_order_minor"] == 5 * M and binh["margin_rate"] == pytest.approx(0.35)
    assert pick(binh, *DEALS) == (0, 2, 0.0, 0, None)
    assert pick(binh, *TREND) == (2 * M, 0, None, "up")
    assert pick(chi, *FIGURES) == (1, 3 * M, 1 * M, 1, 0)
    # chi's "signed" deal is won in the south pipeline; the "won"-named one counts for nothing
    assert pick(chi, *DEALS) == (1, 0, 1.0, 3 * M, 3 * M)
    assert pick(chi, *TREND) == (0, 3 * M, pytest.approx(-1.0), "down")
    assert pick(nobody, *FIGURES) == (1, 1 * M, 100_000, 1, 0)
    assert pick(nobody, *TREND) == (0, 1 * M, pytest.approx(-1.0), "down")
    # mai's only deal is in USD: counted as won, left out of the amounts
    assert pick(mai, *FIGURES) == (0, 0, 0, 0, 0) and mai["average_order_minor"] is None
    assert pick(mai, *DEALS) == (1, 0, 1.0, 0, None)
    assert pick(mai, *TREND) == (0, 0, None, "flat")


def test_sales_totals_series_and_other_currencies(ss_crm, perf):
    data = sales(ss_crm, ADMIN)
    total = data["totals"]
    assert pick(total, *FIGURES) == (8, 35 * M, 11_500_000, 7, 1)
    assert total["margin_rate"] == pytest.approx(11.5 / 31)
    assert total["average_order_minor"] == 4_375_000
    assert pick(total, *DEALS) == (4, 3, pytest.approx(4 / 7), 23 * M, 7_666_667)
    assert pick(total, *TREND) == (9 * M, 8 * M, pytest.approx(0.125), "up")
    assert data["trend_months"] == ["2026-03", "2026-02"]
    assert data["months"] == ["2026-01", "2026-02", "2026-03"]
    assert data["series"] == {
        "revenue_minor": [18 * M, 8 * M, 9 * M],
        "margin_minor": [7 * M, 1_100_000, 3_400_000],
        "orders": [2, 3, 3],
        "won": [1, 1, 2],
        "lost": [0, 2, 1],
    }
    assert data["other_currencies"] == {"USD": 1}


def test_sales_per_team(ss_crm, perf):
    p = ss_crm.people
    data = sales(ss_crm, ADMIN, by="team")
    assert [r["key"] for r in data["rows"]] == [p["team:north"], p["team:south"], None]
    north, south, nobody = (rows(data)[k] for k in (p["team:north"], p["team:south"], None))
    assert north["label"] == "Kinh doanh miền Bắc" and nobody["label"] is None
    assert pick(north, *FIGURES) == (6, 31 * M, 10_400_000, 5, 1)
    assert pick(north, *DEALS) == (3, 3, 0.5, 20 * M, 10 * M)
    assert pick(north, *TREND) == (9 * M, 4 * M, pytest.approx(1.25), "up")
    assert pick(south, *FIGURES) == (1, 3 * M, 1 * M, 1, 0)
    assert pick(nobody, *FIGURES) == (1, 1 * M, 100_000, 1, 0)
    assert data["totals"]["revenue_minor"] == 35 * M


def test_customer_margins_largest_first(ss_crm, perf):
    data = sales(ss_crm, ADMIN)
    got = [
        (c["customer_id"], c["orders"], c["revenue_minor"], c["margin_minor"])
        for c in data["customers"]
    ]
    assert got == [
        (perf["C1"], 3, 15 * M, 4_400_000),
        (perf["C2"], 2, 10 * M, 3_500_000),
        (perf["C4"], 2, 7 * M, 2_600_000),
        (perf["C3"], 1, 3 * M, 1 * M),
    ]
    first = data["customers"][0]
    assert first["name"] == "Công ty Ánh Dương" and first["orders_without_cost"] == 1
    assert first["margin_rate"] == pytest.approx(0.4)


def test_a_seller_with_scope_own_sees_only_their_own_row(ss_crm, perf):
    set_scope(ss_crm, "sales", "own")
    p = ss_crm.people
    data = sales(ss_crm, AN)
    assert [r["key"] for r in data["rows"]] == [p[AN]]
    assert data["totals"]["revenue_minor"] == 21 * M
    assert data["series"]["revenue_minor"] == [10 * M, 4 * M, 7 * M]
    # the customers an may see (their own and unowned), on an's orders only
    assert [(c["customer_id"], c["margin_minor"]) for c in data["customers"]] == [
        (perf["C1"], 4_400_000),
        (perf["C4"], 2_500_000),
    ]
    chi = sales(ss_crm, CHI)
    assert [r["key"] for r in chi["rows"]] == [p[CHI]]
    assert [c["customer_id"] for c in chi["customers"]] == [perf["C3"]]
    assert chi["other_currencies"] == {}
    assert [r["key"] for r in sales(ss_crm, CHI, by="team")["rows"]] == [p["team:south"]]


def test_a_manager_sees_their_team(ss_crm, perf):
    p = ss_crm.people
    data = sales(ss_crm, MAI)
    assert [r["key"] for r in data["rows"]] == [p[AN], p[BINH], p[MAI]]
    assert data["totals"]["revenue_minor"] == 31 * M
    assert [(c["customer_id"], c["margin_minor"]) for c in data["customers"]] == [
        (perf["C1"], 4_400_000),
        (perf["C2"], 3_500_000),
        (perf["C4"], 2_500_000),
    ]
    assert [r["key"] for r in sales(ss_crm, MAI, by="team")["rows"]] == [p["team:north"]]
    # salespeople keep their default scope (team) here: binh sees the north team too
    assert [r["key"] for r in sales(ss_crm, BINH)["rows"]] == [p[AN], p[BINH], p[MAI]]


def test_an_analyst_sees_everything(ss_crm, perf):
    assert sales(ss_crm, ANALYST)["totals"]["revenue_minor"] == 35 * M
    assert alert_figures(ss_crm, ANALYST)["totals"]["raised"] == 8


def test_trend_reaches_before_a_period_starting_this_month(ss_crm, perf):
    p = ss_crm.people
    data = sales(ss_crm, ADMIN, start=dt.date(2026, 3, 1), end=END)
    an = rows(data)[p[AN]]
    assert pick(an, "orders", "revenue_minor") == (2, 7 * M)
    assert pick(an, *TREND) == (7 * M, 4 * M, pytest.approx(0.75), "up")
    # chi sold only last month: a row for the trend, nothing in the period
    chi = rows(data)[p[CHI]]
    assert pick(chi, "orders", "revenue_minor", *TREND) == (0, 0, 0, 3 * M, -1.0, "down")
    assert data["months"] == ["2026-03"]
    assert data["totals"]["this_month_minor"] == 9 * M


def test_period_and_grouping_are_checked(ss_crm, perf):
    with pytest.raises(PerformanceError) as bad:
        sales(ss_crm, ADMIN, start=END, end=START)
    assert bad.value.field == "end"
    with pytest.raises(PerformanceError) as bad:
        sales(ss_crm, ADMIN, by="region")
    assert bad.value.field == "by"
    with pytest.raises(PerformanceError):
        alert_figures(ss_crm, ADMIN, by="team")
    with pytest.raises(PerformanceError) as bad:
        sales(ss_crm, ADMIN, start=dt.date(2000, 1, 1))
    assert bad.value.field == "start"


def test_default_period_is_the_last_twelve_months():
    assert performance.default_period(dt.date(2026, 3, 20)) == (dt.date(2025, 4, 1), END)
    assert performance.default_period(dt.date(2026, 12, 31)) == (
        dt.date(2026, 1, 1),
        dt.date(2026, 12, 31),
    )


def test_an_empty_period(ss_crm, perf):
    data = sales(ss_crm, ADMIN, start=dt.date(2024, 1, 1), end=dt.date(2024, 2, 29))
    assert data["rows"] == [] and data["customers"] == []
    assert data["totals"]["average_order_minor"] is None and data["totals"]["win_rate"] is None
    assert data["series"]["revenue_minor"] == [0, 0]
    empty = alert_figures(ss_crm, ADMIN, start=dt.date(2024, 1, 1), end=dt.date(2024, 2, 29))
    assert empty["rows"] == [] and empty["totals"]["conversion_rate"] is None


# --- alert performance --------------------------------------------------------------------------

OUTCOMES = ("raised", "acted", "converted", "dismissed", "expired", "open")
MONEY = ("credited_minor", "expected_minor", "other_currency")


def test_alerts_per_kind_are_worked_out_by_hand(ss_crm, perf):
    data = alert_figures(ss_crm, ADMIN)
    assert [r["key"] for r in data["rows"]] == ["cross_sell", "up_sell", "churn"]
    cross, up, churn = (rows(data)[k] for k in ("cross_sell", "up_sell", "churn"))
    assert pick(cross, *OUTCOMES) == (4, 1, 1, 1, 0, 2)
    assert pick(cross, *MONEY) == (2 * M, 1_100_000, 1)
    assert cross["conversion_rate"] == 0.25
    assert pick(up, *OUTCOMES) == (2, 1, 0, 0, 1, 1)
    assert pick(up, *MONEY) == (0, 1 * M, 0) and up["conversion_rate"] == 0.0
    assert pick(churn, *OUTCOMES) == (2, 0, 1, 0, 0, 1)
    assert pick(churn, *MONEY) == (3 * M, 6 * M, 0) and churn["conversion_rate"] == 0.5
    total = data["totals"]
    assert pick(total, *OUTCOMES) == (8, 2, 2, 1, 1, 4)
    assert pick(total, *MONEY) == (5 * M, 8_100_000, 1)
    assert total["conversion_rate"] == 0.25 and total["acted_rate"] == 0.25
    assert data["months"] == ["2026-01", "2026-02", "2026-03"]
    assert data["series"] == {
        "raised": [2, 2, 4],
        "acted": [1, 1, 0],
        "converted": [1, 0, 1],
        "credited_minor": [2 * M, 0, 3 * M],
    }
    assert data["other_currencies"] == {"USD": 1}


def test_alerts_per_salesperson_product_and_month(ss_crm, perf):
    p = ss_crm.people
    owners = alert_figures(ss_crm, ADMIN, by="owner")
    # most raised first; ties by name (Lê Minh Chi before Nguyễn Văn An); unowned last
    assert [(r["key"], r["raised"]) for r in owners["rows"]] == [
        (p[BINH], 3),
        (p[CHI], 2),
        (p[AN], 2),
        (None, 1),
    ]
    assert pick(rows(owners)[p[CHI]], "converted", "credited_minor", "other_currency") == (
        1,
        3 * M,
        1,
    )
    products = alert_figures(ss_crm, ADMIN, by="product")
    assert [(r["key"], r["label"], r["raised"]) for r in products["rows"]] == [
        (perf["P2"], "Bộ lõi lọc thay thế", 3),
        (perf["P1"], "Máy lọc nước Karofi", 3),
        (None, None, 2),
    ]
    assert pick(rows(products)[perf["P1"]], "acted", "converted", "credited_minor") == (2, 1, 2 * M)
    months = alert_figures(ss_crm, ADMIN, by="month")
    assert [(r["key"], r["raised"], r["credited_minor"]) for r in months["rows"]] == [
        ("2026-01", 2, 2 * M),
        ("2026-02", 2, 0),
        ("2026-03", 4, 3 * M),
    ]


def test_alert_figures_follow_visibility_and_scope(ss_crm, perf):
    set_scope(ss_crm, "sales", "own")
    p = ss_crm.people
    an = alert_figures(ss_crm, AN, by="owner")
    assert [(r["key"], r["raised"]) for r in an["rows"]] == [(p[AN], 2)]
    assert pick(an["totals"], "converted", "dismissed", "credited_minor") == (1, 1, 2 * M)
    chi = alert_figures(ss_crm, CHI)
    assert chi["totals"]["raised"] == 2 and chi["other_currencies"] == {"USD": 1}
    # the manager: the north team's alerts (not the unowned churn alert)
    mai = alert_figures(ss_crm, MAI, by="owner")
    assert [(r["key"], r["raised"]) for r in mai["rows"]] == [(p[BINH], 3), (p[AN], 2)]
    # a user who may not see the customers counts nothing of theirs
    with ss_crm.db.write() as session:
        helpers.add_alert(
            session, customer_id=perf["C2"], owner_id=p[AN], raised_at=at(2, 1), state="expired"
        )
    assert alert_figures(ss_crm, AN)["totals"]["raised"] == 2
    assert alert_figures(ss_crm, ADMIN)["totals"]["raised"] == 9


def test_credited_this_month(ss_crm, perf):
    with ss_crm.db.session() as session:

        def credited(email: str, today: dt.date) -> int:
            return performance.credited_this_month(
                ss_crm, session, helpers.user(ss_crm, email), today
            )

        assert credited(ADMIN, dt.date(2026, 3, 20)) == 3 * M
        assert credited(ADMIN, dt.date(2026, 1, 31)) == 2 * M
        assert credited(ADMIN, dt.date(2026, 2, 28)) == 0
        assert credited(MAI, dt.date(2026, 3, 20)) == 0  # A5 is chi's, in the south
        assert credited(CHI, dt.date(2026, 3, 9)) == 0  # converted on the 10th


def _move(crm: Any, order_id: int, *statuses: str) -> None:
    """Move the order through ``statuses`` as the operational module does."""
    from plugins.operational import orders

    with crm.db.write() as session:
        order = session.get(Order, order_id)
        for status in statuses:
            assert orders.set_status(session, crm, order, status, order.version)


def test_credit_is_taken_back_when_the_converting_order_is_cancelled_or_returned(ss_crm, perf):
    def credited(today: dt.date) -> int:
        with ss_crm.db.session() as session:
            return performance.credited_this_month(
                ss_crm, session, helpers.user(ss_crm, ADMIN), today
            )

    # O1 (which converted A1, in January) is cancelled after the conversion
    _move(ss_crm, perf["O1"], "cancelled")
    data = alert_figures(ss_crm, ADMIN)
    cross, churn = rows(data)["cross_sell"], rows(data)["churn"]
    assert pick(cross, "converted", "credited_minor") == (1, 0)  # converted, no credit
    assert pick(churn, "converted", "credited_minor") == (1, 3 * M)
    assert pick(data["totals"], "converted", "credited_minor") == (2, 3 * M)
    assert data["series"]["credited_minor"] == [0, 0, 3 * M]
    assert data["series"]["converted"] == [1, 0, 1]
    assert credited(dt.date(2026, 1, 31)) == 0
    assert credited(dt.date(2026, 3, 20)) == 3 * M
    owners = alert_figures(ss_crm, ADMIN, by="owner")
    an = rows(owners)[ss_crm.people[AN]]
    assert pick(an, "converted", "credited_minor") == (1, 0)
    # O9 (which converted A5, the churn alert, in March) is shipped, then returned
    _move(ss_crm, perf["O9"], "shipped")
    assert credited(dt.date(2026, 3, 20)) == 3 * M  # shipped still stands
    _move(ss_crm, perf["O9"], "returned")
    data = alert_figures(ss_crm, ADMIN)
    assert pick(rows(data)["churn"], "converted", "credited_minor") == (1, 0)
    assert pick(data["totals"], "converted", "credited_minor") == (2, 0)
    assert data["series"]["credited_minor"] == [0, 0, 0]
    assert credited(dt.date(2026, 3, 20)) == 0


def test_credit_of_a_deleted_order_is_not_counted(ss_crm, perf):
    from sqlalchemy import delete

    from plugins.smart_sales.models import Alert

    p = ss_crm.people
    with ss_crm.db.write() as session:
        alert_id = helpers.add_alert(
            session,
            customer_id=perf["C1"],
            product_id=perf["P2"],
            owner_id=p[AN],
            raised_at=at(2, 1),
            state="converted",
            credited_minor=4 * M,
            closed_at=at(2, 16),
            converted_order_id=perf["O2"],
        )
    figures = alert_figures(ss_crm, ADMIN)
    assert figures["series"]["credited_minor"] == [2 * M, 4 * M, 3 * M]
    with ss_crm.db.write() as session:
        session.execute(delete(Order).where(Order.id == perf["O2"]))
    with ss_crm.db.session() as session:
        assert session.get(Alert, alert_id).converted_order_id is None  # ON DELETE SET NULL
        assert (
            performance.credited_this_month(
                ss_crm, session, helpers.user(ss_crm, ADMIN), dt.date(2026, 2, 28)
            )
            == 0
        )
    figures = alert_figures(ss_crm, ADMIN)
    assert figures["series"]["credited_minor"] == [2 * M, 0, 3 * M]
    assert figures["series"]["converted"] == [1, 1, 1]  # still converted
