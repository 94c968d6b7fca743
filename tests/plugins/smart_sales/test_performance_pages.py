"""The performance pages: sign-in and permission, figures and charts of the history of
``test_performance``, scopes, the period picker, Vietnamese and Persian (RTL) rendering, the
menu entry and the dashboard widget."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from core import i18n
from plugins.smart_sales import performance
from tests.plugins.smart_sales import helpers
from tests.plugins.smart_sales.helpers import ADMIN, AN, DUNG, MAI
from tests.plugins.smart_sales.test_performance import M, seed, set_scope

SALES = "/smart_sales/performance"
ALERTS = "/smart_sales/performance/alerts"
PERIOD = "?start=2026-01-01&end=2026-03-20"


@pytest.fixture
def perf(ss_crm) -> dict[str, int]:
    """``ss_crm`` with the history of ``test_performance``."""
    return seed(ss_crm)


def charts(page: str) -> dict[str, Any]:
    """The data of each chart of a page, by canvas id."""
    return {
        name: json.loads(html.unescape(data))
        for name, data in re.findall(
            r'<canvas[^>]*id="chart-([\w-]+)"[^>]*data-chart="([^"]*)"', page
        )
    }


def table(page: str, table_id: str) -> list[list[str]]:
    """The body rows of a table as lists of cell texts (tags stripped)."""
    found = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', page, re.S)
    assert found, table_id
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells]
        for cells in (
            re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", found.group(1), re.S)
        )
    ]


def speak(client: Any, language: str) -> None:
    """Switch the signed-in user's language."""
    assert client.post("/account/language", {"language": language}).status_code == 303


def test_anonymous_users_are_sent_to_sign_in(ss_crm, browser):
    for url in (SALES, ALERTS):
        response = browser(ss_crm).get(url, follow_redirects=False)
        assert response.status_code in (302, 303, 307) and "/login" in response.headers["location"]


def test_the_pages_need_the_performance_permission(ss_crm, perf, browser):
    dung = browser(ss_crm, DUNG)
    for url in (SALES, ALERTS):
        assert dung.get(url).status_code == 403
    assert "/smart_sales/performance" not in dung.get("/").text
    assert 'href="/smart_sales/performance"' in browser(ss_crm, AN).get("/").text


def test_sales_page_figures_and_charts(ss_crm, perf, browser):
    page = browser(ss_crm, ADMIN).get(SALES + PERIOD)
    assert page.status_code == 200
    text = page.text
    rows = table(text, "sales-table")
    assert [r[0] for r in rows] == [
        "Nguyễn Văn An",
        "Trần Thị Bình",
        "Lê Minh Chi",
        "No owner",
        "Hoàng Mai",
    ]
    an = rows[0]
    assert an[1:5] == ["₫21,000,000", "₫6,900,000", "40.6%", "4"]
    assert an[7:10] == ["2", "1", "66.7%"]
    assert an[11] == "▲ 75.0%"
    assert rows[1][11] == "▲ new" and rows[2][11] == "▼ 100.0%" and rows[4][11] == "="
    found = charts(text)
    assert found["money"] == {
        "labels": ["2026-01", "2026-02", "2026-03"],
        "series": [
            {"label": "Revenue", "data": [18_000_000, 8_000_000, 9_000_000]},
            {"label": "Margin", "data": [7_000_000, 1_100_000, 3_400_000], "type": "line"},
        ],
    }
    assert found["win-rate"]["labels"] == [r[0] for r in rows]
    assert found["win-rate"]["series"][0]["data"] == [66.7, 0.0, 100.0, None, 100.0]
    assert found["win-rate"]["percent"] is True
    customers = table(text, "customers-table")
    assert [c[:3] for c in customers] == [
        ["Công ty Ánh Dương", "₫15,000,000", "₫4,400,000"],
        ["Cửa hàng Bình Minh", "₫10,000,000", "₫3,500,000"],
        ["Khách lẻ Hà Nội", "₫7,000,000", "₫2,600,000"],
        ["شرکت پارس", "₫3,000,000", "₫1,000,000"],
    ]
    assert f'href="/ui/customer/{perf["C1"]}"' in text
    assert "1 order has no cost" in text and "USD 1" in text
    assert 'value="2026-01-01"' in text and 'value="2026-03-20"' in text


def test_sales_page_per_team(ss_crm, perf, browser):
    page = browser(ss_crm, ADMIN).get(SALES + PERIOD + "&by=team")
    rows = table(page.text, "sales-table")
    assert [r[:2] for r in rows] == [
        ["Kinh doanh miền Bắc", "₫31,000,000"],
        ["Kinh doanh miền Nam", "₫3,000,000"],
        ["No team", "₫1,000,000"],
    ]
    assert 'name="by" value="team"' in page.text


def test_a_seller_with_scope_own_sees_their_row_only(ss_crm, perf, browser):
    set_scope(ss_crm, "sales", "own")
    an = browser(ss_crm, AN)
    rows = table(an.get(SALES + PERIOD).text, "sales-table")
    assert [r[0] for r in rows] == ["Nguyễn Văn An"]
    assert [r[0] for r in table(an.get(ALERTS + PERIOD).text, "alerts-by-owner")] == [
        "Nguyễn Văn An"
    ]
    mai = browser(ss_crm, MAI)
    assert [r[0] for r in table(mai.get(SALES + PERIOD).text, "sales-table")] == [
        "Nguyễn Văn An",
        "Trần Thị Bình",
        "Hoàng Mai",
    ]


def test_alert_page_tables_and_charts(ss_crm, perf, browser):
    text = browser(ss_crm, ADMIN).get(ALERTS + PERIOD).text
    kinds = table(text, "alerts-by-kind")
    assert kinds == [
        ["Cross-sell", "4", "1", "1", "1", "0", "2", "25.0%", "₫2,000,000", "₫1,100,000"],
        ["Up-sell", "2", "1", "0", "0", "1", "1", "0.0%", "₫0", "₫1,000,000"],
        ["Churn", "2", "0", "1", "0", "0", "1", "50.0%", "₫3,000,000", "₫6,000,000"],
    ]
    products = table(text, "alerts-by-product")
    assert [r[:2] for r in products] == [
        ["Bộ lõi lọc thay thế", "3"],
        ["Máy lọc nước Karofi", "3"],
        ["No product (win back)", "2"],
    ]
    owners = table(text, "alerts-by-owner")
    assert [r[:2] for r in owners] == [
        ["Trần Thị Bình", "3"],
        ["Lê Minh Chi", "2"],
        ["Nguyễn Văn An", "2"],
        ["No owner", "1"],
    ]
    found = charts(text)
    assert found["outcomes"]["labels"] == ["2026-01", "2026-02", "2026-03"]
    assert [s["data"] for s in found["outcomes"]["series"]] == [[2, 2, 4], [1, 1, 0], [1, 0, 1]]
    assert found["credited"]["series"][0]["data"] == [2_000_000, 0, 3_000_000]
    assert "USD 1" in text


def test_the_period_picker(ss_crm, perf, browser):
    admin = browser(ss_crm, ADMIN)
    default = admin.get(SALES).text
    start, end = (d.isoformat() for d in performance.default_period())
    assert f'value="{start}"' in default and f'value="{end}"' in default
    assert start.endswith("-01") and end == helpers.now().date().isoformat()
    labels = charts(default)["money"]["labels"]
    assert len(labels) == 12 and labels[0] == start[:7] and labels[-1] == end[:7]
    march = admin.get(SALES + "?start=2026-03-01&end=2026-03-31").text
    assert charts(march)["money"]["labels"] == ["2026-03"]
    # empty dates (the form's blank fields) are the defaults
    assert admin.get(SALES + "?start=&end=").status_code == 200


@pytest.mark.parametrize("url", [SALES, ALERTS])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?start=2026-99-01", "start"),
        ("?start=soon&end=2026-03-20", "start"),
        ("?start=2026-01-01&end=2026-02-30", "end"),
        ("?end=31/03/2026", "end"),
        ("?start=2026-03-01&end=2026-01-01", "end"),  # ends before it starts
        ("?start=2000-01-01&end=2026-01-01", "start"),  # more than ten years
    ],
)
def test_a_bad_period_is_refused_naming_the_field(ss_crm, perf, browser, url, query, field):
    answer = browser(ss_crm, ADMIN).get(url + query)
    assert answer.status_code == 422
    assert 'class="error-box" role="alert">' + field + ":" in answer.text
    assert 'id="chart-' not in answer.text  # no figures shown


def test_an_unknown_grouping_is_refused_naming_by(ss_crm, perf, browser):
    answer = browser(ss_crm, ADMIN).get(SALES + PERIOD + "&by=region")
    assert answer.status_code == 422
    assert 'class="error-box" role="alert">by: by must be one of owner, team' in answer.text


@pytest.mark.parametrize(("language", "direction"), [("vi", "ltr"), ("fa", "rtl")])
def test_pages_render_in_vietnamese_and_persian(ss_crm, perf, browser, language, direction):
    admin = browser(ss_crm, ADMIN)
    speak(admin, language)
    text = admin.get(SALES + PERIOD).text
    assert f'<html lang="{language}" dir="{direction}">' in text
    an = table(text, "sales-table")[0]
    assert an[1] == i18n.format_money(21 * M, "VND", language)
    assert an[3] == i18n.format_share(6.9 / 17, language)
    assert an[4] == i18n.format_number(4, language)
    assert an[11] == "▲ " + i18n.format_share(0.75, language)
    assert "<bdi>شرکت پارس</bdi>" in text
    alerts = admin.get(ALERTS + PERIOD).text
    assert f'<html lang="{language}" dir="{direction}">' in alerts
    cross = table(alerts, "alerts-by-kind")[0]
    assert cross[1] == i18n.format_number(4, language)
    assert cross[7] == i18n.format_share(0.25, language)
    assert cross[8] == i18n.format_money(2 * M, "VND", language)
    if language == "fa":
        assert "۲۱٬۰۰۰٬۰۰۰" in an[1] and "۲۰۲۶-۰۳" in text  # Persian digits, month in the header


def test_dashboard_widget_revenue_credited_this_month(ss_crm, perf, browser):
    p = ss_crm.people
    today = helpers.now()
    with ss_crm.db.write() as session:
        converting = helpers.order(session, ss_crm, perf["C1"], [perf["P1"]], at=today)
        helpers.add_alert(
            session,
            customer_id=perf["C1"],
            owner_id=p[AN],
            raised_at=today,
            state="converted",
            credited_minor=1_234_000,
            closed_at=today,
            converted_order_id=converting,
        )
    url = "/ui/widgets/smart_sales.credited_month"
    assert "Revenue credited to alerts this month" in browser(ss_crm, ADMIN).get("/").text
    admin = browser(ss_crm, ADMIN).get(url)
    assert admin.status_code == 200 and 'data-value="1234000"' in admin.text
    assert "₫1,234,000" in admin.text
    chi = browser(ss_crm, "chi@example.com").get(url)
    assert 'data-value="0"' in chi.text  # chi's team does not own the alert
    assert browser(ss_crm, DUNG).get(url).status_code == 403
