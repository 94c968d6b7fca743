"""``GET /api/smart_sales/performance/sales`` and ``/performance/alerts``: the figures of
``test_performance``'s history as JSON, scopes, the default period and refused input."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.web.app import create_app
from plugins.smart_sales import performance
from tests.plugins.smart_sales.helpers import ADMIN, AN, DUNG, MAI
from tests.plugins.smart_sales.test_performance import ANALYST, M, seed, set_scope

SALES = "/api/smart_sales/performance/sales"
ALERTS = "/api/smart_sales/performance/alerts"
PERIOD = {"start": "2026-01-01", "end": "2026-03-20"}


@pytest.fixture
def perf(ss_crm) -> dict[str, int]:
    """``ss_crm`` with the history of ``test_performance``."""
    return seed(ss_crm)


def test_sales_per_salesperson(ss_crm, perf, api):
    p = ss_crm.people
    response = api(ss_crm, ADMIN).get(SALES, params=PERIOD)
    assert response.status_code == 200
    data = response.json()
    assert (data["start"], data["end"], data["by"], data["currency"]) == (
        "2026-01-01",
        "2026-03-20",
        "owner",
        "VND",
    )
    assert [r["key"] for r in data["rows"]] == [p[AN], p["binh@example.com"], p["chi@example.com"],
                                                None, p[MAI]]  # fmt: skip
    an = data["rows"][0]
    assert an["label"] == "Nguyễn Văn An"
    assert (an["revenue_minor"], an["margin_minor"], an["orders"], an["average_order_minor"]) == (
        21 * M,
        6_900_000,
        4,
        5_250_000,
    )
    assert (an["won"], an["lost"], an["average_won_minor"]) == (2, 1, 10 * M)
    assert (an["change"], an["direction"]) == (0.75, "up")
    total = data["totals"]
    assert (total["revenue_minor"], total["margin_minor"], total["win_rate"]) == (
        35 * M,
        11_500_000,
        pytest.approx(4 / 7),
    )
    assert data["series"]["revenue_minor"] == [18 * M, 8 * M, 9 * M]
    assert data["customers"][0] == {
        "customer_id": perf["C1"],
        "name": "Công ty Ánh Dương",
        "orders": 3,
        "revenue_minor": 15 * M,
        "margin_minor": 4_400_000,
        "margin_rate": pytest.approx(0.4),
        "orders_without_cost": 1,
    }
    assert data["other_currencies"] == {"USD": 1}
    assert data["trend_months"] == ["2026-03", "2026-02"]


def test_sales_per_team(ss_crm, perf, api):
    p = ss_crm.people
    data = api(ss_crm, ADMIN).get(SALES, params={**PERIOD, "by": "team"}).json()
    assert [(r["key"], r["label"], r["revenue_minor"]) for r in data["rows"]] == [
        (p["team:north"], "Kinh doanh miền Bắc", 31 * M),
        (p["team:south"], "Kinh doanh miền Nam", 3 * M),
        (None, None, 1 * M),
    ]


def test_alerts_per_kind_product_owner_and_month(ss_crm, perf, api):
    p = ss_crm.people
    admin = api(ss_crm, ADMIN)
    kinds = admin.get(ALERTS, params=PERIOD).json()
    assert [
        (r["key"], r["raised"], r["converted"], r["credited_minor"]) for r in kinds["rows"]
    ] == [
        ("cross_sell", 4, 1, 2 * M),
        ("up_sell", 2, 0, 0),
        ("churn", 2, 1, 3 * M),
    ]
    total = kinds["totals"]
    assert (total["raised"], total["acted"], total["conversion_rate"]) == (8, 2, 0.25)
    assert kinds["series"] == {
        "raised": [2, 2, 4],
        "acted": [1, 1, 0],
        "converted": [1, 0, 1],
        "credited_minor": [2 * M, 0, 3 * M],
    }
    products = admin.get(ALERTS, params={**PERIOD, "by": "product"}).json()
    assert [r["key"] for r in products["rows"]] == [perf["P2"], perf["P1"], None]
    owners = admin.get(ALERTS, params={**PERIOD, "by": "owner"}).json()
    assert [r["key"] for r in owners["rows"]] == [
        p["binh@example.com"],
        p["chi@example.com"],
        p[AN],
        None,
    ]
    months = admin.get(ALERTS, params={**PERIOD, "by": "month"}).json()
    assert [r["key"] for r in months["rows"]] == ["2026-01", "2026-02", "2026-03"]


def test_figures_follow_the_users_scope(ss_crm, perf, api):
    set_scope(ss_crm, "sales", "own")
    p = ss_crm.people
    an = api(ss_crm, AN)
    sales = an.get(SALES, params=PERIOD).json()
    assert [r["key"] for r in sales["rows"]] == [p[AN]]
    assert [c["customer_id"] for c in sales["customers"]] == [perf["C1"], perf["C4"]]
    alerts = an.get(ALERTS, params={**PERIOD, "by": "owner"}).json()
    assert [(r["key"], r["raised"]) for r in alerts["rows"]] == [(p[AN], 2)]
    mai = api(ss_crm, MAI).get(SALES, params={**PERIOD, "by": "team"}).json()
    assert [r["key"] for r in mai["rows"]] == [p["team:north"]]
    analyst = api(ss_crm, ANALYST).get(ALERTS, params=PERIOD).json()
    assert analyst["totals"]["raised"] == 8


def test_default_period_is_the_last_twelve_months(ss_crm, perf, api):
    start, end = performance.default_period()
    data = api(ss_crm, ADMIN).get(SALES).json()
    assert (data["start"], data["end"]) == (start.isoformat(), end.isoformat())
    assert len(data["months"]) == 12
    alerts = api(ss_crm, ADMIN).get(ALERTS, params={"start": "2026-02-01"}).json()
    assert (alerts["start"], alerts["end"]) == ("2026-02-01", end.isoformat())


def test_sign_in_and_permission_are_required(ss_crm, perf, api):
    anonymous = TestClient(create_app(ss_crm))
    dung = api(ss_crm, DUNG)
    for url in (SALES, ALERTS):
        assert anonymous.get(url).status_code == 401
        assert dung.get(url).status_code == 403


def test_bad_input_is_422_naming_the_field(ss_crm, perf, api):
    admin = api(ss_crm, ADMIN)
    backwards = admin.get(SALES, params={"start": "2026-03-01", "end": "2026-01-01"})
    assert backwards.status_code == 422
    assert backwards.json()["detail"][0]["loc"] == ["query", "end"]
    too_long = admin.get(ALERTS, params={"start": "1990-01-01", "end": "2026-01-01"})
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["query", "start"]
    assert admin.get(SALES, params={"by": "region"}).status_code == 422
    assert admin.get(ALERTS, params={"by": "team"}).status_code == 422
    assert admin.get(SALES, params={"start": "soon"}).status_code == 422
