"""Alerts in the generated UI: the ``alert`` resource applies the customer's record rule to its
list, search, count and export; the menu entry and its badge; the customer 360 panel "Next
best offers" (acting and dismissing in it); the dashboard widget."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import insert

from core.models import RolePermission
from tests.plugins.smart_sales.helpers import AN, CHI, DUNG, MAI, add_alert
from tests.plugins.smart_sales.test_alerts_api import seed, state_of

SLOT = "/ui/slots/smart_sales.next_best_offers"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def world(ss_crm):
    """``seed`` of ``ss_crm``."""
    return seed(ss_crm)


def _listed(text: str) -> set[int]:
    return {int(i) for i in re.findall(r'<tr data-id="(\d+)"', text)}


def _count(text: str) -> int:
    return int(re.search(r'<p class="count">\s*(\d+) records', text).group(1))


def _grant_export(crm, role: str) -> None:
    """Give ``role`` the export right on alerts (managers hold it by default)."""
    with crm.db.write() as session:
        session.execute(
            insert(RolePermission).values(role=role, permission="smart_sales.alert:export")
        )


def test_the_alert_list_search_count_and_export_show_only_visible_customers(ss_crm, world, browser):
    an_alerts = {world[k] for k in ("an_b", "an_a", "an_none", "an_churn", "an_closed")}
    north = an_alerts | {world["binh"], world["nobody"]}
    an = browser(ss_crm, AN)
    listing = an.get("/ui/alert")
    assert listing.status_code == 200
    assert _listed(listing.text) == north and _count(listing.text) == len(north)
    assert "Lê Thu Trang" not in listing.text and "Nguyễn Thị Hoa" in listing.text
    # search by the customer's name (accents ignored): Chi's customer stays hidden
    assert _listed(an.get("/ui/alert", params={"q": "le thu"}).text) == set()
    hoa = an.get("/ui/alert", params={"q": "nguyen thi"}).text
    assert _listed(hoa) == {world[k] for k in ("an_b", "an_churn", "an_closed")}
    assert _count(hoa) == 3
    # filters
    assert _listed(an.get("/ui/alert", params={"kind": "churn"}).text) == {world["an_churn"]}
    assert _listed(an.get("/ui/alert", params={"state": "dismissed"}).text) == {world["an_closed"]}
    owner = str(ss_crm.people[CHI])
    assert _listed(an.get("/ui/alert", params={"owner_id": owner}).text) == set()
    assert _listed(an.get("/ui/alert", params={"owner_id": "x"}).text) == set()
    assert _listed(an.get("/ui/alert", params={"value_tier": "A"}).text) == {
        world["an_a"],
        world["an_churn"],
    }
    # one record: hidden ones are 404
    assert an.get(f"/ui/alert/{world['binh']}").status_code == 200
    assert an.get(f"/ui/alert/{world['chi']}").status_code == 404
    chi = browser(ss_crm, CHI)
    assert _listed(chi.get("/ui/alert").text) == {world["chi"], world["nobody"]}
    # no form: alerts change through the inbox only
    assert an.get("/ui/alert/new").status_code in (403, 404)
    assert an.post(f"/ui/alert/{world['an_b']}/edit", {"state": "converted"}).status_code in (
        403,
        404,
    )
    assert state_of(ss_crm, world["an_b"]).state == "new"
    # export (needs the export right, which no role holds by default)
    assert an.get("/ui/alert/export.csv").status_code == 403
    _grant_export(ss_crm, "sales")
    an = browser(ss_crm, AN)  # a new session picks up the new right
    exported = an.get("/ui/alert/export.csv")
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {int(r["id"]) for r in rows} == north
    searched = an.get("/ui/alert/export.csv", params={"q": "nguyen thi"}).text
    assert {int(r["id"]) for r in csv.DictReader(io.StringIO(searched))} == {
        world[k] for k in ("an_b", "an_churn", "an_closed")
    }


def test_the_detail_page_explains_the_alert(ss_crm, world, browser):
    an = browser(ss_crm, AN)
    page = an.get(f"/ui/alert/{world['an_a']}")
    assert page.status_code == 200
    assert "Phạm Ngọc Lan" in page.text and "Máy lọc Pro" in page.text
    assert f'href="/smart_sales/alerts/{world["an_a"]}"' in page.text
    assert "upgrades to" in page.text  # the reason tab, in plain words


def test_the_menu_entry_and_its_badge(ss_crm, world, browser):
    an = browser(ss_crm, AN)
    home = an.get("/").text
    assert 'href="/smart_sales/inbox"' in home
    assert 'data-badge="/smart_sales/inbox/count"' in home
    assert an.get("/smart_sales/inbox/count").json() == {"count": 4}
    dung = browser(ss_crm, DUNG)
    assert 'href="/smart_sales/inbox"' not in dung.get("/").text


def test_the_customer_360_panel_shows_the_top_offers_and_the_churn_alert(ss_crm, world, browser):
    with ss_crm.db.write() as session:
        for value in (10, 20):  # two more offers for Lan: four in all, three shown
            add_alert(
                session,
                customer_id=world["lan"],
                product_id=world["machine" if value == 10 else "spare"],
                owner_id=ss_crm.people[AN],
                expected_value_minor=value,
            )
    an = browser(ss_crm, AN)
    lan = an.get(f"{SLOT}/{world['lan']}")
    assert lan.status_code == 200
    offers = [int(i) for i in re.findall(r'data-offer="(\d+)"', lan.text)]
    assert offers[:2] == [world["an_none"], world["an_a"]] and len(offers) == 3
    assert "Ấm đun siêu tốc" in lan.text and "Máy lọc Pro" in lan.text
    assert 'class="offer offer-churn"' not in lan.text
    hoa = an.get(f"{SLOT}/{world['hoa']}").text
    assert f'id="offer-{world["an_churn"]}"' in hoa and "offer-churn" in hoa
    assert "120" in hoa  # the churn reason in plain words
    # the panel is only for customers the user may see
    assert an.get(f"{SLOT}/{world['trang']}").status_code == 404
    assert browser(ss_crm, DUNG).get(f"{SLOT}/{world['lan']}").status_code == 403
    # the customer page places the panel
    page = an.get(f"/ui/customer/{world['lan']}").text
    assert "/ui/slots/smart_sales.next_best_offers/" in page


def test_acting_and_dismissing_in_the_panel_redraw_it(ss_crm, world, browser):
    an = browser(ss_crm, AN)
    lan = an.get(f"{SLOT}/{world['lan']}").text
    assert f'hx-target="#offers-{world["lan"]}"' in lan
    acted = an.post(
        f"/smart_sales/alerts/{world['an_none']}/act",
        {"view": "offer", "version": "1"},
        headers=HTMX,
    )
    assert acted.status_code == 200
    assert acted.text.startswith(f'<div id="offers-{world["lan"]}"')
    assert "hx-swap-oob" not in acted.text  # no inbox count on the customer page
    assert acted.headers["HX-Trigger"] == "crm:badges"
    assert state_of(ss_crm, world["an_none"]).state == "acted"
    dismissed = an.post(
        f"/smart_sales/alerts/{world['an_a']}/dismiss",
        {"view": "offer", "reason": "bad_timing"},
        headers=HTMX,
    )
    assert f'data-offer="{world["an_a"]}"' not in dismissed.text
    assert state_of(ss_crm, world["an_a"]).dismiss_reason == "bad_timing"
    # without htmx: back to the customer's page
    plain = an.post(f"/smart_sales/alerts/{world['an_b']}/act", {"view": "offer"})
    assert plain.status_code == 303
    assert plain.headers["location"] == f"/ui/customer/{world['hoa']}"
    stale = an.post(
        f"/smart_sales/alerts/{world['an_none']}/dismiss",
        {"view": "offer", "reason": "other", "version": "1"},
        headers=HTMX,
    )
    assert 'class="error-box alert-error"' in stale.text


def test_the_dashboard_widget_counts_my_open_alerts(ss_crm, world, browser, api):
    an = browser(ss_crm, AN)
    assert 'hx-get="/ui/widgets/smart_sales.my_alerts"' in an.get("/").text
    widget = an.get("/ui/widgets/smart_sales.my_alerts").text
    assert 'data-value="4"' in widget
    api(ss_crm, AN).post(f"/api/smart_sales/alerts/{world['an_b']}/act")
    assert 'data-value="4"' in an.get("/ui/widgets/smart_sales.my_alerts").text  # acted: open
    mai = browser(ss_crm, MAI)
    assert 'data-value="0"' in mai.get("/ui/widgets/smart_sales.my_alerts").text
    assert browser(ss_crm, DUNG).get("/ui/widgets/smart_sales.my_alerts").status_code == 403


def test_the_alert_views_load_without_problems(ss_crm):
    from core.web.app import create_app

    registry = create_app(ss_crm).state.ui.registry
    assert [p for p in registry.problems if "alert" in p] == []
    assert registry.view("alert", "list") is not None
    assert registry.view("alert", "detail") is not None
    assert registry.view("alert", "form") is None
    assert any(s.id == "smart_sales.next_best_offers" for s in registry.slots)
    assert [m.url for m in registry.menus].count("/smart_sales/inbox") == 1


def test_with_collaborative_the_inbox_sits_beside_the_notifications(every_crm, browser):
    world = seed(every_crm)
    an = browser(every_crm, AN)
    page = an.get("/smart_sales/inbox").text
    assert 'data-badge="/smart_sales/inbox/count"' in page
    assert 'data-badge="/api/collaborative/notifications/count"' in page
    assert f'id="alert-{world["an_b"]}"' in page
