"""The behaviour and forecast pages and the churn risk panel: sign-in, permission, figures from
the snapshots, "not computed yet", and record rules on the list of customers at high risk."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import insert

from plugins.analytical import behaviour, forecast, rfm
from plugins.analytical.config import settings
from plugins.operational.models import Opportunity, Order
from tests.plugins.analytical.helpers import add_customer, add_people

AS_OF = dt.date(2026, 6, 15)
PAGES = ("/analytical/behaviour", "/analytical/forecast")


@pytest.fixture
def people(an_crm) -> dict[str, int]:
    """Team north (an: sales and manager, team-scoped), team south (chi: sales only)."""
    return add_people(
        an_crm,
        {"north": "Miền Bắc", "south": "Miền Nam"},
        [
            ("an@example.com", "north", ["sales", "manager"]),
            ("chi@example.com", "south", ["sales"]),
        ],
    )


def _seed(crm, people: dict[str, int]) -> dict[str, int]:
    """Customers of north, south and nobody; each has a high-risk one (single purchase over a
    year ago) and a regular one; orders over 30 months; one open opportunity."""
    now = dt.datetime.now(dt.UTC)
    with crm.db.write() as session:
        ids = {
            "NorthLost": add_customer(session, "NorthLost", people["an@example.com"]),
            "SouthLost": add_customer(session, "SouthLost", people["chi@example.com"]),
            "PoolLost": add_customer(session, "PoolLost", None),
            "Regular": add_customer(session, "Regular", None),
        }
        orders = [
            (ids["NorthLost"], dt.datetime(2025, 3, 1, 10, tzinfo=dt.UTC), 9_000_000),
            (ids["SouthLost"], dt.datetime(2025, 3, 2, 10, tzinfo=dt.UTC), 7_000_000),
            (ids["PoolLost"], dt.datetime(2025, 3, 3, 10, tzinfo=dt.UTC), 20_000_000),
        ]
        for month in range(30):  # Jan 2024 .. Jun 2026, monthly
            year, m = divmod(month, 12)
            orders.append(
                (ids["Regular"], dt.datetime(2024 + year, m + 1, 5, tzinfo=dt.UTC), 1_000_000)
            )
        session.execute(
            insert(Order),
            [
                {
                    "ref": f"P{n}",
                    "customer_id": cid,
                    "placed_at": at,
                    "total_minor": total,
                    "status": "paid",
                    "currency": "VND",
                    "created_at": now,
                    "version": 1,
                }
                for n, (cid, at, total) in enumerate(orders)
            ],
        )
        session.execute(
            insert(Opportunity).values(
                customer_id=ids["Regular"],
                title="Renewal",
                expected_revenue_minor=12_345_679,
                currency="VND",
                probability=50,
                probability_overridden=False,
                expected_close=dt.date(2026, 7, 10),
                stage="proposal",
                created_at=now,
                updated_at=now,
                version=1,
            )
        )
    return ids


def _refresh(crm) -> None:
    with crm.db.write() as session:
        rfm.refresh(session, AS_OF)
        behaviour.refresh(session, AS_OF, behaviour.ChurnRules.from_settings(settings(crm)))
        forecast.refresh(session, AS_OF, "VND")


def test_anonymous_users_are_sent_to_sign_in(an_crm, browser):
    for url in PAGES:
        response = browser().client.get(
            url, headers={"Accept": "text/html"}, follow_redirects=False
        )
        assert response.status_code in (302, 303, 307) and "/login" in response.headers["location"]


def test_the_pages_need_the_insight_permission(an_crm, people, browser):
    chi = browser("chi@example.com")
    for url in PAGES:
        assert chi.get(url).status_code == 403


def test_pages_say_not_computed_yet_without_a_snapshot(an_crm, people, browser):
    admin = browser("admin@example.com", "Admin-pass-123")
    for url in PAGES:
        page = admin.get(url)
        assert page.status_code == 200 and "Not computed yet" in page.text


def test_pages_render_with_empty_snapshots(an_crm, people, browser):
    _refresh(an_crm)
    admin = browser("admin@example.com", "Admin-pass-123")
    page = admin.get("/analytical/behaviour")
    assert page.status_code == 200 and "No purchases up to this date." in page.text
    page = admin.get("/analytical/forecast")
    assert page.status_code == 200 and 'id="not-enough-history"' in page.text
    assert (
        "No open opportunities." in page.text and "Not enough history for a backtest" in page.text
    )


def test_behaviour_page_shows_the_snapshot_within_record_rules(an_crm, people, browser):
    ids = _seed(an_crm, people)
    _refresh(an_crm)
    admin = browser("admin@example.com", "Admin-pass-123")
    page = admin.get("/analytical/behaviour").text
    assert 'class="heat heat-10"' in page  # every cohort's +0 column
    cohort_rows = re.findall(r'<th scope="row">(\d{4}-\d{2})</th>', page)
    assert cohort_rows == ["2024-01", "2025-03"]
    assert 'data-risk="high">3<' in page and 'data-risk="low">1<' in page
    assert page.count('data-chart="') == 2 and "How is this computed?" in page
    listed = [int(i) for i in re.findall(r'<tr data-id="(\d+)"', page)]
    # highest total spent first (PoolLost bought last, so it is not the longest overdue)
    assert listed == [ids["PoolLost"], ids["NorthLost"], ids["SouthLost"]]
    assert "₫20,000,000" in page and "Customers who bought on several days: 1;" in page
    assert f'href="/ui/customer/{ids["NorthLost"]}"' in page
    assert "A single purchase day" in page

    north = browser("an@example.com").get("/analytical/behaviour").text
    listed = [int(i) for i in re.findall(r'<tr data-id="(\d+)"', north)]
    assert listed == [ids["PoolLost"], ids["NorthLost"]]  # not south's customer
    assert "SouthLost" not in north


def test_forecast_page_shows_pipeline_revenue_and_backtest(an_crm, people, browser):
    _seed(an_crm, people)
    _refresh(an_crm)
    page = browser("an@example.com").get("/analytical/forecast")
    assert page.status_code == 200
    text = page.text
    assert 'data-group="2026-07"' in text
    assert "₫6,172,840" in text  # 12,345,679 x 50 / 100 = 6,172,839.5, rounded half up
    assert "₫12,345,679" in text
    assert "Holt-Winters" in text  # 29 complete months of history
    assert 'id="backtest-errors"' in text and "More accurate" in text
    assert text.count('data-chart="') == 2


def test_the_customer_360_panel_shows_churn_risk(an_crm, people, browser):
    ids = _seed(an_crm, people)
    admin = browser("admin@example.com", "Admin-pass-123")
    assert "Not computed yet" in admin.get(f"/ui/slots/analytical.churn/{ids['PoolLost']}").text
    _refresh(an_crm)
    panel = admin.get(f"/ui/slots/analytical.churn/{ids['PoolLost']}").text
    assert 'data-risk="high"' in panel and "469 days ago" in panel
    regular = admin.get(f"/ui/slots/analytical.churn/{ids['Regular']}").text
    assert 'data-risk="low"' in regular and "30.4 days" in regular
