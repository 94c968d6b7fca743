"""Record rules everywhere: what team B sees of every module is exactly team B's (and the
shared pool's) records, in lists, searches, counts, totals, autocompletes, kanbans, exports,
reports and dashboards. Figures are asserted exactly, not only the absence of team A's names;
team A's figures are large, so a leak changes every one of them.

The data (``tests/security/r_rules.py``) is made once per database: team B is ``other_team``
(a salesperson) and ``rival_boss`` (its manager, for reports, exports and analytics). The
access matrix (``test_access_matrix.py``) checks separately that no page shows team A's text.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_SECRET, _postgres_admin_url, postgres_url_or_skip
from tests.security.r_rules import A_NAMES, B_NAMES, POOL_NAME, RulesWorld, build
from tests.security.world import ADMIN_EMAIL, ADMIN_PASSWORD, PLUGINS, create_world
from tests.web.conftest import ids_on


def _rules_world(url: str, folder: Path) -> Iterator[RulesWorld]:
    from core import modules
    from core.bootstrap import initialise
    from core.runtime import Crm
    from core.settings import load_settings

    env = {
        "CRM_DATABASE_URL": url,
        "CRM_SECRET_KEY": TEST_SECRET,
        "CRM_BACKUP_DIR": str(folder / "backups"),
        "CRM_LOAD_PLUGINS": ",".join(PLUGINS),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("CRM_") and k not in env]:
            if key not in ("CRM_TEST_POSTGRES_URL", "CRM_REQUIRE_POSTGRES"):
                patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        patch.chdir(folder)
        crm = Crm(load_settings(environ=env))
        try:
            initialise(crm, ADMIN_EMAIL, ADMIN_PASSWORD)
            modules.enable(crm, list(PLUGINS))
            crm.refresh()
            yield build(create_world(crm))
        finally:
            crm.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def rules(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Two teams with known records in every module (``tests/security/r_rules.py``)."""
    folder = tmp_path_factory.mktemp("rules")
    if request.param == "sqlite":
        yield from _rules_world(f"sqlite:///{folder / 'crm.db'}", folder)
        return
    from core.testing import postgres_database

    with postgres_database(postgres_url_or_skip(_postgres_admin_url())) as url:
        yield from _rules_world(url, folder)


def _widget(page: Any) -> Any:
    """The figure of a number widget, or the chart data of a chart widget."""
    assert page.status_code == 200, page.text[:300]
    number = re.search(r'data-value="([^"]*)"', page.text)
    if number:
        return int(number.group(1))
    chart = re.search(r'data-chart="([^"]*)"', page.text).group(1)
    return json.loads(chart.replace("&#34;", '"'))


def _csv(page: Any) -> list[dict[str, str]]:
    assert page.status_code == 200, page.text[:300]
    assert page.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(page.text)))


def _records_count(html: str) -> int:
    return int(re.search(r"(\d+) records", html).group(1))


def _json(response: Any) -> Any:
    assert response.status_code == 200, (response.request.url, response.text[:300])
    return response.json()


# --- core -------------------------------------------------------------------------------------


def test_customers_in_lists_searches_autocomplete_counts_duplicates_and_exports(rules):
    """Team B sees its two customers and the shared pool: three, wherever they are counted."""
    seen = {rules.customers[n] for n in (*B_NAMES, POOL_NAME)}
    twin, first = rules.customers["twin"], rules.customers[B_NAMES[0]]
    rival, admin = rules.api("other_team"), rules.api("admin")

    listed = _json(rival.get("/api/customers", params={"limit": 500}))
    assert {c["id"] for c in listed["items"]} == seen and listed["total"] == 3
    # a search matching both teams' "Beta Dung Tien" finds team B's only (the admin finds both)
    found = _json(rival.get("/api/customers", params={"q": "beta dung"}))
    assert [c["id"] for c in found["items"]] == [first] and found["total"] == 1
    everyone = _json(admin.get("/api/customers", params={"q": "beta dung"}))
    assert {c["id"] for c in everyone["items"]} == {first, twin}
    assert _json(rival.get("/api/customers", params={"q": "alpha"}))["total"] == 0
    # looking a customer up by an identity of team A's is as if it did not exist
    assert (
        rival.get("/api/customers/lookup", params={"email": "anh@example.org"}).status_code == 404
    )
    assert (
        admin.get("/api/customers/lookup", params={"email": "anh@example.org"}).status_code == 200
    )
    # duplicates: team A's twin is a duplicate for the admin, never for team B
    assert twin in {
        d["customer"]["id"] for d in _json(admin.get(f"/api/customers/{first}/duplicates"))
    }
    assert _json(rival.get(f"/api/customers/{first}/duplicates")) == []

    ui = rules.ui("other_team")
    page = ui.get("/ui/customer")
    assert set(ids_on(page.text)) == seen and _records_count(page.text) == 3
    # the search box's live results (htmx), as the user types
    typed = ui.get(
        "/ui/customer",
        params={"q": "beta dung"},
        headers={"Accept": "text/html", "HX-Request": "true", "HX-Target": "list-results"},
    )
    assert ids_on(typed.text) == [first] and _records_count(typed.text) == 1
    assert _widget(ui.get("/ui/widgets/core.customers")) == 3
    assert _widget(ui.get("/ui/widgets/core.sources"))["series"][0]["data"] == [3]

    exported = _csv(rules.ui("rival_boss").get("/ui/customer/export.csv"))
    assert {int(r["id"]) for r in exported} == seen
    assert {r["display_name"] for r in exported} == {*B_NAMES, POOL_NAME}


# --- operational ------------------------------------------------------------------------------

B_ORDER_TOTAL = 110_000 + 230_000 + 370_000
B_WEIGHTED = 300_000 * 40 // 100 + 200_000 * 10 // 100


def test_orders_deals_tickets_and_activities_in_lists_kanbans_widgets_and_exports(rules):
    b_orders = {i for n in B_NAMES for i in rules.orders[n]}
    b_deals = {rules.deals["Beta first deal"], rules.deals["Beta second deal"]}
    rival = rules.api("other_team")

    orders = _json(rival.get("/api/operational/orders", params={"limit": 100}))
    assert {o["id"] for o in orders["items"]} == b_orders and orders["total"] == 3
    assert sum(o["total_minor"] for o in orders["items"]) == B_ORDER_TOTAL
    deals = _json(rival.get("/api/operational/opportunities"))["items"]
    assert {d["id"] for d in deals} == b_deals
    assert sum(d["weighted_minor"] for d in deals) == B_WEIGHTED
    tickets = _json(rival.get("/api/operational/tickets"))
    assert [t["id"] for t in tickets["items"]] == [rules.tickets["Beta delivery"]]
    assert tickets["total"] == 1
    activities = _json(rival.get("/api/operational/activities"))
    assert {a["subject"] for a in activities} == {
        f"{B_NAMES[0]} late call",
        f"{B_NAMES[0]} next call",
    }

    ui = rules.ui("other_team")
    page = ui.get("/ui/order")
    assert set(ids_on(page.text)) == b_orders and _records_count(page.text) == 3
    page = ui.get("/ui/interaction")
    assert _records_count(page.text) == 2 and A_NAMES[0] not in page.text
    kanban = ui.get("/ui/opportunity/kanban").text
    assert {int(i) for i in re.findall(r'id="card-(\d+)"', kanban)} == b_deals
    assert re.search(r"New <small>\((\d+)\)</small>", kanban).group(1) == "2"
    tickets_board = ui.get("/ui/ticket/kanban").text
    assert re.findall(r'id="card-(\d+)"', tickets_board) == [str(rules.tickets["Beta delivery"])]
    assert _widget(ui.get("/ui/widgets/operational.pipeline")) == B_WEIGHTED
    assert _widget(ui.get("/ui/widgets/operational.overdue")) == 1

    boss = rules.ui("rival_boss")
    exported = _csv(boss.get("/ui/order/export.csv"))
    assert {int(r["id"]) for r in exported} == b_orders
    assert sum(int(r["total_minor"]) for r in exported) == B_ORDER_TOTAL
    assert len(_csv(boss.get("/ui/opportunity/export.csv"))) == 2
    assert len(_csv(boss.get("/ui/ticket/export.csv"))) == 1


def test_operational_reports_and_the_revenue_widget_count_team_b_only(rules):
    """Reports and the revenue chart of team B's manager add up team B's records only."""
    boss = rules.ui("rival_boss")
    pipeline = _csv(
        boss.get("/operational/reports", params={"report": "pipeline", "format": "csv"})
    )
    assert pipeline == [
        {
            "stage": "new",
            "owner": "Rita Rival",
            "count": "2",
            "expected_minor": "500000",
            "weighted_minor": str(B_WEIGHTED),
        }
    ]
    activity = _csv(
        boss.get("/operational/reports", params={"report": "activity", "format": "csv"})
    )
    assert [(r["user"], r["call"], r["total"]) for r in activity] == [("Rita Rival", "2", "2")]
    revenue = _widget(boss.get("/ui/widgets/operational.revenue"))
    assert sum(revenue["series"][0]["data"]) == B_ORDER_TOTAL
    # team A's manager sees team A's, the administrator everyone's
    mine = _widget(rules.ui("manager").get("/ui/widgets/operational.revenue"))
    assert sum(mine["series"][0]["data"]) == 21_000_000
    everyone = _widget(rules.ui("admin").get("/ui/widgets/operational.revenue"))
    assert sum(everyone["series"][0]["data"]) == 21_000_000 + B_ORDER_TOTAL


# --- analytical -------------------------------------------------------------------------------


def test_segment_previews_and_customer_analytics_follow_the_rules(rules):
    """Per-customer analytics of team B's manager list team B's buyers only."""
    b_buyers = {rules.customers[n] for n in B_NAMES}
    boss = rules.api("rival_boss")
    preview = boss.post(
        "/api/analytical/segments/preview",
        json={"definition": {"last_purchase_within_days": 30}},
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["count"] == 2
    assert {c["id"] for c in preview.json()["customers"]} == b_buyers
    admin = rules.api("admin").post(
        "/api/analytical/segments/preview",
        json={"definition": {"last_purchase_within_days": 30}},
    )
    assert admin.json()["count"] == 4  # team A's two buyers too
    value = _csv(rules.ui("rival_boss").get("/analytical/value.csv"))
    assert {int(r["customer_id"]) for r in value} == b_buyers
    assert sum(int(r["revenue_minor"]) for r in value) == B_ORDER_TOTAL
    # RFM segment sizes, their means and the R x F grid are over team B's two buyers: a
    # segment of one team A customer would otherwise show that customer's spend as its mean
    rfm = rules.ui("rival_boss").get("/analytical/rfm").text
    assert re.search(r"All scored customers</th><td>(\d+)</td>", rfm).group(1) == "2"
    assert set(re.findall(r"<td>(₫[\d,]+)</td>", rfm)) == {"₫110,000", "₫600,000"}
    everyone = rules.ui("admin").get("/analytical/rfm").text
    assert re.search(r"All scored customers</th><td>(\d+)</td>", everyone).group(1) == "4"
    listed = rules.ui("rival_boss").get("/analytical/rfm", params={"segment": "loyal"}).text
    assert B_NAMES[1] in listed and all(name not in listed for name in A_NAMES)


# --- collaborative ----------------------------------------------------------------------------


def _entries(items: list[dict[str, Any]]) -> set[tuple[str, Any]]:
    return {(e["kind"], e["record_id"]) for e in items}


def test_inbox_counts_feed_and_notes_follow_the_rules(rules):
    rival, admin = rules.api("other_team"), rules.api("admin")
    # one notification: team B's manager's mention; team A's mention of a hidden record is none
    assert _json(rival.get("/api/collaborative/notifications/count")) == {"count": 1}
    listed = _json(rival.get("/api/collaborative/notifications"))["items"]
    assert len(listed) == 1 and "Beta look" in json.dumps(listed)
    inbox = rules.ui("other_team").get("/collaborative/inbox").text
    assert 'data-unread="1"' in inbox
    assert _json(rules.api("owner").get("/api/collaborative/notifications/count")) == {"count": 1}

    # the feed of team B's seller is exactly what happened on its two customers
    feed = _json(rival.get("/api/collaborative/feed", params={"limit": 100}))["items"]
    expected: set[tuple[str, Any]] = set()
    for name in B_NAMES:
        expected |= _entries(
            _json(
                admin.get(
                    "/api/collaborative/feed",
                    params={"limit": 100, "customer_id": rules.customers[name]},
                )
            )["items"]
        )
    assert _entries(feed) == expected and len(expected) >= 8
    hidden = rules.customers[A_NAMES[0]]
    assert rival.get("/api/collaborative/feed", params={"customer_id": hidden}).status_code == 404
    notes = rival.get(
        "/api/collaborative/messages", params={"record_type": "customer", "record_id": hidden}
    )
    assert notes.status_code == 404


# --- smart sales ------------------------------------------------------------------------------


def test_alert_lists_badges_widgets_and_performance_count_team_b_only(rules):
    b_alerts = {rules.alerts[k] for k in ("b1", "b2", "b3")}
    rival = rules.api("other_team")
    listed = _json(rival.get("/api/smart_sales/alerts"))["items"]
    assert {a["id"] for a in listed} == b_alerts
    assert _json(rival.get("/api/smart_sales/alerts/count")) == {"count": 2, "open": 3}
    ui = rules.ui("other_team")
    assert _json(ui.client.get("/smart_sales/inbox/count")) == {"count": 2}
    assert 'data-waiting="2"' in ui.get("/smart_sales/inbox").text
    assert _widget(ui.get("/ui/widgets/smart_sales.my_alerts")) == 3

    for persona in ("other_team", "rival_boss"):
        sales = _json(rules.api(persona).get("/api/smart_sales/performance/sales"))
        assert [r["label"] for r in sales["rows"]] == ["Rita Rival"]
        assert sales["totals"]["orders"] == 3
        assert sales["totals"]["revenue_minor"] == B_ORDER_TOTAL
        teams = _json(
            rules.api(persona).get("/api/smart_sales/performance/sales", params={"by": "team"})
        )
        assert [r["revenue_minor"] for r in teams["rows"]] == [B_ORDER_TOTAL]
        alerts = _json(rules.api(persona).get("/api/smart_sales/performance/alerts"))
        assert alerts["totals"]["raised"] == 3 and alerts["totals"]["expected_minor"] == 60_000
    # team B's manager's team tab holds team B's alerts only
    team_tab = rules.ui("rival_boss").get("/smart_sales/inbox", params={"scope": "team"}).text
    assert {int(i) for i in re.findall(r'data-alert="(\d+)"', team_tab)} == b_alerts
