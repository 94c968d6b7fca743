"""Operational reports on screen and as CSV, within the user's record rule."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from core import users
from core.customers import service
from core.web.app import create_app
from plugins.operational import interactions, pipeline
from tests.web.conftest import Browser


@pytest.fixture
def browser(ops_crm):
    app = create_app(ops_crm)

    def make(email: str, password: str = "Password-123!") -> Browser:
        client = Browser(TestClient(app, base_url="http://testserver"))
        assert client.login(email, password).status_code == 303
        return client

    return make


def _seed(crm) -> None:
    with crm.db.write() as session:
        an = users.get_user(session, "an@example.com")
        chi = users.get_user(session, "chi@example.com")
        for owner, name, amount in ((an, "Khách Bắc", 10_000_000), (chi, "Khách Nam", 30_000_000)):
            customer = service.create(session, crm, {"display_name": name, "owner_id": owner.id})
            pipeline.create(
                session,
                {
                    "customer_id": customer.id,
                    "title": f"Deal {name}",
                    "owner_id": owner.id,
                    "team_id": owner.team_id,
                    "stage": "proposal",
                    "expected_revenue_minor": amount,
                },
                "VND",
            )
            interactions.log(session, customer.id, "call", "phone", "Gọi", user_id=owner.id)


def test_pipeline_report_weights_values_and_exports_csv(ops_crm, browser):
    _seed(ops_crm)
    admin = browser("admin@example.com", "Admin-pass-123")
    page = admin.get("/operational/reports", params={"report": "pipeline"})
    assert page.status_code == 200
    assert "₫5,000,000" in page.text and "₫15,000,000" in page.text  # 50% of each
    assert 'data-chart="' in page.text
    rows = list(
        csv.DictReader(
            io.StringIO(
                admin.get(
                    "/operational/reports", params={"report": "pipeline", "format": "csv"}
                ).text
            )
        )
    )
    assert sorted(int(r["weighted_minor"]) for r in rows) == [5_000_000, 15_000_000]
    activity = admin.get("/operational/reports", params={"report": "activity"}).text
    assert "An" in activity and "Chi" in activity


def test_reports_need_the_permission_and_follow_record_rules(ops_crm, browser):
    from core import users as accounts

    _seed(ops_crm)
    with ops_crm.db.write() as session:  # an becomes a (team-scoped) manager of the north team
        accounts.set_roles(
            session, accounts.get_user(session, "an@example.com"), ["sales", "manager"]
        )
    assert browser("chi@example.com").get("/operational/reports").status_code == 403
    north = (
        browser("an@example.com").get("/operational/reports", params={"report": "pipeline"}).text
    )
    assert "₫5,000,000" in north and "₫15,000,000" not in north
    for report in ("sla", "satisfaction"):
        assert (
            browser("an@example.com")
            .get("/operational/reports", params={"report": report})
            .status_code
            == 200
        )
    bad = browser("admin@example.com", "Admin-pass-123").get(
        "/operational/reports", params={"since": "2026-02-01", "until": "2026-01-01"}
    )
    assert bad.status_code == 422
