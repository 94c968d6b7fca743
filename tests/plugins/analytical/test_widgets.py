"""The analytical widgets on the home dashboard: shown to analysts only, empty without a
snapshot, and equal to the KPI reference computation once ``kpi`` has run."""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from core import users
from core.customers.models import Customer
from core.web.app import create_app
from plugins.analytical import kpi
from plugins.analytical.models import CustomerClass, Run
from tests.plugins.analytical.test_kpi import AS_OF, generate, reference
from tests.web.conftest import Browser

PASSWORD = "Password-123!"
WIDGETS = (
    "analytical.revenue_month",
    "analytical.new_customers",
    "analytical.retention",
    "analytical.revenue_chart",
    "analytical.classes",
)


@pytest.fixture
def browser(an_crm):
    with an_crm.db.write() as session:
        for email, roles in (("lan@example.com", ["analyst"]), ("an@example.com", ["sales"])):
            users.create_user(session, email, email.split("@")[0].title(), PASSWORD, roles)
    app = create_app(an_crm)

    def make(email: str) -> Browser:
        client = Browser(TestClient(app, base_url="http://testserver"))
        assert client.login(email, PASSWORD).status_code == 303
        return client

    return make


def _chart(text: str) -> dict:
    found = re.search(r'data-chart="([^"]*)"', text)
    assert found, text
    return json.loads(html.unescape(found.group(1)))


def _value(text: str) -> str:
    found = re.search(r'data-value="([^"]*)"', text)
    assert found, text
    return found.group(1)


def test_home_shows_the_widgets_to_analysts_only(browser):
    analyst, sales = browser("lan@example.com"), browser("an@example.com")
    home = analyst.get("/").text
    for widget in WIDGETS:
        assert f'hx-get="/ui/widgets/{widget}"' in home
    assert "analytical." not in sales.get("/").text
    assert sales.get("/ui/widgets/analytical.revenue_month").status_code == 403


def test_widgets_are_empty_without_a_snapshot(browser):
    analyst = browser("lan@example.com")
    for widget in ("analytical.revenue_month", "analytical.new_customers", "analytical.retention"):
        page = analyst.get(f"/ui/widgets/{widget}")
        assert page.status_code == 200 and "How is this computed?" in page.text
        assert _value(page.text) == "None" and "crm analytics refresh" in page.text
    for widget in ("analytical.revenue_chart", "analytical.classes"):
        page = analyst.get(f"/ui/widgets/{widget}")
        assert page.status_code == 200 and "How is this computed?" in page.text
        assert _chart(page.text) == {"labels": [], "series": []}


def test_widgets_read_the_latest_snapshots(an_crm, browser):
    data = generate(an_crm, seed=21, customers=60)
    want = reference(data, AS_OF)
    assert want["revenue"][-1] > 0 and want["rate"][-2] is not None
    with an_crm.db.write() as session:
        kpi.refresh(session, AS_OF - dt.timedelta(days=40), "VND")  # an older snapshot
        kpi.refresh(session, AS_OF, "VND")
    analyst = browser("lan@example.com")
    money = analyst.get("/ui/widgets/analytical.revenue_month").text
    assert _value(money) == str(want["revenue"][-1]) and f"₫{want['revenue'][-1]:,}" in money
    new = analyst.get("/ui/widgets/analytical.new_customers").text
    assert _value(new) == str(want["new_customers"][-1])
    retention = analyst.get("/ui/widgets/analytical.retention").text
    assert float(_value(retention)) == pytest.approx(round(want["rate"][-2] * 100, 1))
    chart = _chart(analyst.get("/ui/widgets/analytical.revenue_chart").text)
    assert chart["labels"][0] == "2025-07" and chart["labels"][-1].startswith("2026-06")
    assert chart["series"][0]["data"] == want["revenue"][-12:]  # VND: minor = major units


def test_class_widget_counts_the_latest_classes_run(an_crm, browser):
    generate(an_crm, seed=2, customers=12)
    with an_crm.db.write() as session:
        runs = []
        for as_of in (dt.date(2026, 5, 1), dt.date(2026, 6, 1)):
            run = Run(kind="classes", as_of=as_of, params={}, rows=0)
            session.add(run)
            session.flush()
            runs.append(run.id)
        customers = list(session.scalars(select(Customer.id).order_by(Customer.id)))
        classes = ["loyal"] * 5 + ["new"] * 3 + ["unaware"] * 4
        session.execute(
            insert(CustomerClass),
            [
                {"run_id": runs[0], "customer_id": c, "klass": "potential", "reason": "x"}
                for c in customers
            ]
            + [
                {"run_id": runs[1], "customer_id": c, "klass": k, "reason": "x"}
                for c, k in zip(customers, classes, strict=True)
            ],
        )
    chart = _chart(browser("lan@example.com").get("/ui/widgets/analytical.classes").text)
    expected = {k: classes.count(k) for k in set(classes)}
    assert dict(zip(chart["labels"], chart["series"][0]["data"], strict=True)) == {
        "Loyal": expected["loyal"],
        "New (just acquired)": expected["new"],
        "Unaware / not interested": expected["unaware"],
    }
