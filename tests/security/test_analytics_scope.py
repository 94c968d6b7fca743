"""Analytics aggregates follow record rules: the KPI dashboard, the forecast page and the
analytical dashboard widgets show team B's manager the figures of the customers team B may see,
computed live, while a user who sees every customer (the administrator, an analyst) reads the
company-wide snapshot. Figures are asserted exactly on both databases.

The data is the two-team world of ``tests/security/r_rules.py`` plus a history of monthly orders
(team B: 100,000 x k, k months ago for k = 1..8; team A: 5,000,000 x k for k = 2..8), so that
team B has a revenue forecast and every leak of team A's figures changes a number.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import _postgres_admin_url, postgres_url_or_skip
from tests.security.r_rules import A_NAMES, B_NAMES, RulesWorld
from tests.security.test_record_rules import _rules_world
from tests.security.world import PASSWORD

ANALYST = "ana.lyst@example.com"
#: Months of order history before the current month.
HISTORY = 8
B_MONTHLY = 100_000
A_MONTHLY = 5_000_000
#: The orders r_rules places today.
B_TODAY = 110_000 + 230_000 + 370_000
A_TODAY = 9_000_000 + 7_000_000 + 5_000_000
B_WEIGHTED = 300_000 * 40 // 100 + 200_000 * 10 // 100
A_WEIGHTED = 8_000_000 * 50 // 100 + 4_000_000 * 25 // 100


def _months_ago(today: dt.date, k: int) -> dt.datetime:
    """Noon UTC on the 15th of the month ``k`` months before ``today``'s."""
    index = today.year * 12 + today.month - 1 - k
    return dt.datetime(index // 12, index % 12 + 1, 15, 12, tzinfo=dt.UTC)


def _history(rules: RulesWorld) -> None:
    """Monthly orders of both teams in the past months, then a fresh analytics refresh."""
    from plugins.analytical.refresh import run_steps

    today = dt.datetime.now(dt.UTC).date()
    product = rules.api("admin").get("/api/operational/products").json()["items"][0]["id"]
    plan = [("other_team", B_NAMES[0], B_MONTHLY, k) for k in range(1, HISTORY + 1)]
    plan += [("owner", A_NAMES[0], A_MONTHLY, k) for k in range(2, HISTORY + 1)]
    for persona, name, amount, k in plan:
        response = rules.api(persona).post(
            "/api/operational/orders",
            json={
                "customer_id": rules.customers[name],
                "placed_at": _months_ago(today, k).isoformat(),
                "lines": [{"product_id": product, "quantity": 1, "unit_price_minor": amount * k}],
            },
        )
        assert response.status_code == 201, response.text
    for _ in run_steps(rules.world.crm, today):
        pass
    rules.extra["today"] = today


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def rules(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The two-team world with an order history and an all-scope analyst."""
    from core import users

    folder = tmp_path_factory.mktemp("analytics-scope")

    def made(worlds: Iterator[RulesWorld]) -> Iterator[RulesWorld]:
        for world in worlds:
            with world.world.crm.db.write() as session:
                users.create_user(session, ANALYST, "Ana Lyst", PASSWORD, ["analyst"])
            _history(world)
            yield world

    if request.param == "sqlite":
        yield from made(_rules_world(f"sqlite:///{folder / 'crm.db'}", folder))
        return
    from core.testing import postgres_database

    with postgres_database(postgres_url_or_skip(_postgres_admin_url())) as url:
        yield from made(_rules_world(url, folder))


def _ui(rules: RulesWorld, persona: str) -> Any:
    if persona == "analyst":
        if "analyst_ui" not in rules.extra:
            from tests.security.r_kit import browser

            rules.extra["analyst_ui"] = browser(rules.world.app, ANALYST, PASSWORD)
        return rules.extra["analyst_ui"]
    return rules.ui(persona)


def _page(rules: RulesWorld, persona: str, path: str) -> str:
    response = _ui(rules, persona).get(path)
    assert response.status_code == 200, (persona, path, response.text[:300])
    return response.text


def _chart(text: str, marker: str = "") -> dict[str, Any]:
    """The chart data of the first chart after ``marker`` in ``text``."""
    found = re.search(r'data-chart="([^"]*)"', text[text.index(marker) :])
    assert found, text[:300]
    return json.loads(html.unescape(found.group(1)))


def _series(chart: dict[str, Any], index: int = 0) -> list[Any]:
    return chart["series"][index]["data"]


def _widget(rules: RulesWorld, persona: str, name: str) -> Any:
    """A number widget's value (``None`` when empty), or a chart widget's data."""
    text = _page(rules, persona, f"/ui/widgets/{name}")
    number = re.search(r'data-value="([^"]*)"', text)
    if number:
        return float(number.group(1)) if number.group(1) else None
    return _chart(text)


def _b_series(today: dt.date, complete_only: bool) -> list[int]:
    """Team B's monthly revenue from HISTORY months ago on (the current month unless
    ``complete_only`` and it is not over)."""
    from plugins.analytical.forecast import last_complete_month
    from plugins.analytical.sql import key_of

    past = [B_MONTHLY * k for k in range(HISTORY, 0, -1)]
    if not complete_only or last_complete_month(today) == key_of(today):
        past.append(B_TODAY)
    return past


def _a_month(k: int) -> int:
    return A_MONTHLY * k if 2 <= k <= HISTORY else 0


# --- KPI dashboard ----------------------------------------------------------------------------


def test_kpi_dashboard_of_team_b_manager_counts_team_b_customers_only(rules):
    """Revenue, new customers, retention and segments are team B's, and the page says so."""
    text = _page(rules, "rival_boss", "/analytical/kpi")
    assert "These figures are for the customers you may see." in text
    # this month: Beta Em Hoa's first order (Beta Dung Tien bought months ago)
    assert re.search(r'data-value="(\d+)"', text).group(1) == "1"
    revenue = _series(_chart(text, 'id="kpi-chart-revenue"'))
    assert revenue[-HISTORY - 1 :] == _b_series(rules.extra["today"], complete_only=False)
    assert sum(revenue) == B_TODAY + sum(B_MONTHLY * k for k in range(1, HISTORY + 1))
    # last month's base is Beta Dung Tien, who bought again: 100 %
    retention = _series(_chart(text, 'id="kpi-chart-retention"'))
    assert retention[-2] == 100.0
    # the latest RFM snapshot scored team B's two buyers only
    segments = re.search(r'id="kpi-segments".*?<tbody>(.*?)</tbody>', text, re.S).group(1)
    assert sum(int(n) for n in re.findall(r"<td>(\d+)</td>", segments)) == 2


@pytest.mark.parametrize("persona", ["admin", "analyst"])
def test_kpi_dashboard_of_an_all_scope_user_is_the_company_snapshot(rules, persona):
    """Who sees every customer reads the stored company-wide figures, without the note."""
    from plugins.analytical import kpi

    text = _page(rules, persona, "/analytical/kpi")
    assert "These figures are for the customers you may see." not in text
    assert re.search(r'data-value="(\d+)"', text).group(1) == "2"  # Alpha Bich Ngoc too
    revenue = _series(_chart(text, 'id="kpi-chart-revenue"'))
    b_series = _b_series(rules.extra["today"], complete_only=False)
    a_series = [_a_month(k) for k in range(HISTORY, 0, -1)] + [A_TODAY]
    assert revenue[-HISTORY - 1 :] == [a + b for a, b in zip(a_series, b_series, strict=True)]
    # last month's base is both teams' regular buyers; only team B's bought again
    assert _series(_chart(text, 'id="kpi-chart-retention"'))[-2] == 50.0
    with rules.world.crm.db.session() as session:
        stored = kpi.latest_run(session).summary
    assert stored["revenue"]["revenue_minor"] == revenue


# --- forecasts --------------------------------------------------------------------------------


def _pipeline_total(text: str) -> list[str]:
    foot = re.search(r'id="pipeline-table".*?<tfoot>(.*?)</tfoot>', text, re.S).group(1)
    return re.findall(r"<td>([^<]*)</td>", foot)


def test_forecast_of_team_b_manager_is_team_b_pipeline_and_revenue(rules):
    """The pipeline holds team B's two deals; the revenue forecast is fitted on team B's
    orders only."""
    from plugins.analytical import forecast

    text = _page(rules, "rival_boss", "/analytical/forecast")
    assert "These figures are for the customers you may see." in text
    assert _pipeline_total(text) == ["2", "₫500,000", f"₫{B_WEIGHTED:,}"]
    actual = _series(_chart(text, 'aria-label="Monthly revenue and forecast"'))
    series = _b_series(rules.extra["today"], complete_only=True)
    assert [v for v in actual if v is not None] == series
    # the forecast shown is the model fitted on that series
    predicted, _ = forecast.fit_forecast(series, forecast.HORIZON)
    shown = re.search(r'id="forecast-table".*?<tbody>(.*?)</tbody>', text, re.S).group(1)
    first = re.findall(r"<td>₫([\d,]+)</td>", shown)[0]
    assert int(first.replace(",", "")) == forecast.to_minor(predicted)[0]


def test_forecast_of_team_a_manager_and_of_all_scope_users(rules):
    """Team A's manager sees team A's deals; the administrator and an analyst the company's."""
    mine = _page(rules, "manager", "/analytical/forecast")
    assert _pipeline_total(mine) == ["2", "₫12,000,000", f"₫{A_WEIGHTED:,}"]
    for persona in ("admin", "analyst"):
        text = _page(rules, persona, "/analytical/forecast")
        assert "These figures are for the customers you may see." not in text
        assert _pipeline_total(text) == ["4", "₫12,500,000", f"₫{A_WEIGHTED + B_WEIGHTED:,}"]
        actual = _series(_chart(text, 'aria-label="Monthly revenue and forecast"'))
        b_series = _b_series(rules.extra["today"], complete_only=True)
        a_series = [_a_month(k) for k in range(HISTORY, 0, -1)]
        if len(b_series) > HISTORY:  # the as-of date is the last day of its month
            a_series.append(A_TODAY)
        expected = [a + b for a, b in zip(a_series, b_series, strict=True)]
        assert [v for v in actual if v is not None] == expected


# --- dashboard widgets ------------------------------------------------------------------------


def test_widgets_of_team_b_manager_count_team_b_customers_only(rules):
    """Revenue this month, new customers, retention, the revenue chart and the classes."""
    assert _widget(rules, "rival_boss", "analytical.revenue_month") == B_TODAY
    assert _widget(rules, "rival_boss", "analytical.new_customers") == 1
    assert _widget(rules, "rival_boss", "analytical.retention") == 100.0
    chart = _widget(rules, "rival_boss", "analytical.revenue_chart")
    assert sum(_series(chart)) == B_TODAY + sum(B_MONTHLY * k for k in range(1, HISTORY + 1))
    classes = _widget(rules, "rival_boss", "analytical.classes")
    with rules.world.crm.db.session() as session:
        from sqlalchemy import func, select

        from plugins.analytical.models import CustomerClass
        from plugins.analytical.snapshots import latest_run

        run = latest_run(session, "classes")
        count = select(func.count()).where(CustomerClass.run_id == run.id)
        everyone = session.scalar(count)
        team_b = session.scalar(
            count.where(
                CustomerClass.customer_id.in_(
                    [rules.customers[n] for n in (*B_NAMES, "Pool Gia Bao")]
                )
            )
        )
    assert sum(_series(classes)) == team_b < everyone


def test_widgets_of_an_all_scope_user_are_the_company_snapshot(rules):
    """The administrator and an analyst read the company-wide snapshot."""
    a_history = sum(_a_month(k) for k in range(1, HISTORY + 1))
    b_history = sum(B_MONTHLY * k for k in range(1, HISTORY + 1))
    for persona in ("admin", "analyst"):
        assert _widget(rules, persona, "analytical.revenue_month") == A_TODAY + B_TODAY
        assert _widget(rules, persona, "analytical.new_customers") == 2
        assert _widget(rules, persona, "analytical.retention") == 50.0
        chart = _widget(rules, persona, "analytical.revenue_chart")
        assert sum(_series(chart)) == A_TODAY + B_TODAY + a_history + b_history
