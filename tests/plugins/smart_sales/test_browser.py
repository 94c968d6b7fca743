"""The alert inbox in Debian's Chromium: a salesperson opens the inbox, acts on one alert in one
click and dismisses another with a reason (mouse, then keyboard), without a page reload; the
navigation badge follows, the database holds the new states, and the customer page's "Next
best offers" panel acts too. No console error (CSP included); the inbox reads right to left in
Persian."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.browser_kit import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, require_browser, served
from tests.conftest import TEST_SECRET, Cli

require_browser()
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

ADMIN, ADMIN_PASSWORD = "admin@example.com", "Admin-pass-123"
SELLER, PASSWORD = "an@example.com", "Password-123!"
MODULES = ("operational", "analytical", "smart_sales")
BADGE = "nav a[href='/smart_sales/inbox'] [data-badge]"
expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, plugin_site: Path) -> Iterator[dict[str, Any]]:
    """A SQLite CRM with the smart-selling modules, the people of the collaborative tests and
    the alerts of ``test_alerts_api.seed``, served."""
    from core.runtime import Crm
    from core.settings import load_settings
    from tests.plugins.collaborative.helpers import add_people
    from tests.plugins.smart_sales.test_alerts_api import seed

    folder = tmp_path_factory.mktemp("smart-sales-browser")
    url = f"sqlite:///{folder / 'crm.db'}"
    env = {
        "CRM_DATABASE_URL": url,
        "CRM_SECRET_KEY": TEST_SECRET,
        "CRM_BACKUP_DIR": str(folder / "backups"),
        "CRM_LOAD_PLUGINS": ",".join(MODULES),
        "CRM_CONFIG": "",
    }
    cli = Cli(env, plugin_site, folder)
    for args in (
        ("init", "--admin-email", ADMIN, "--admin-password", ADMIN_PASSWORD, "--no-config"),
        ("modules", "enable", *MODULES),
    ):
        done = cli.run(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    crm = Crm(load_settings(environ={k: v for k, v in env.items() if k != "CRM_CONFIG"}))
    try:
        crm.people = add_people(crm)
        world = seed(crm)
    finally:
        crm.close()
    engine = sa.create_engine(url)
    with served(env, folder, plugin_site) as base:
        yield {"base": base, "world": world, "db": engine}
    engine.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _signed_in(chromium: Browser, base: str, email: str, errors: list[str]) -> Page:
    page = chromium.new_context(base_url=base).new_page()
    page.on(
        "console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    expect(page.locator("form[action='/logout']")).to_be_attached()
    return page


def _row(site: dict[str, Any], alert_id: int) -> dict[str, Any]:
    with site["db"].connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT a.state, a.dismiss_reason, a.dismiss_note, u.email AS actor,"
                " d.email AS dismisser FROM smart_sales_alert a"
                " LEFT JOIN core_user u ON u.id = a.acted_by"
                " LEFT JOIN core_user d ON d.id = a.dismissed_by WHERE a.id = :id"
            ),
            {"id": alert_id},
        ).one()
    return dict(found._mapping)


def test_a_salesperson_acts_on_one_alert_and_dismisses_another(site, chromium):
    world = site["world"]
    errors: list[str] = []
    page = _signed_in(chromium, site["base"], SELLER, errors)
    page.goto("/smart_sales/inbox")
    expect(page.locator("h1")).to_be_visible()
    badge = page.locator(BADGE)
    expect(badge).to_have_text("4")
    rows = page.locator("#alerts > li")
    expect(rows).to_have_count(4)
    # tier A first, then by expected value
    assert rows.first.get_attribute("id") == f"alert-{world['an_churn']}"
    url = page.url

    # opening a row's details marks it seen (and gives its forms the new version)
    offer = page.locator(f"#alert-{world['an_b']}")
    offer.locator("details.alert-more summary").click()
    expect(page.locator(f"#alert-{world['an_b']}-state")).to_have_attribute("data-state", "seen")
    assert _row(site, world["an_b"])["state"] == "seen"

    # act in one click: the row turns "acted" in place (not refused as stale), the badge drops
    offer.locator(f"[data-act='{world['an_b']}']").click()
    expect(offer).to_have_attribute("data-state", "acted")
    expect(offer.locator("[data-act]")).to_have_count(0)
    expect(badge).to_have_text("3")
    expect(page.locator("#alert-count")).to_have_attribute("data-waiting", "3")

    # dismiss: one click opens the reasons, one picks a reason (with a note)
    upsell = page.locator(f"#alert-{world['an_a']}")
    upsell.locator(f"[data-dismiss='{world['an_a']}']").click()
    upsell.locator("textarea[name=note]").fill("Khách đã mua máy Pro ở cửa hàng khác")
    upsell.locator("[data-reason='customer_declined']").click()
    expect(upsell).to_have_attribute("data-state", "dismissed")
    expect(badge).to_have_text("2")

    # and with the keyboard only
    kettle = page.locator(f"#alert-{world['an_none']}")
    kettle.locator(f"[data-dismiss='{world['an_none']}']").focus()
    page.keyboard.press("Enter")
    expect(kettle.locator("details.alert-dismiss")).to_have_attribute("open", "")
    kettle.locator("[data-reason='bad_timing']").focus()
    page.keyboard.press("Enter")
    expect(kettle).to_have_attribute("data-state", "dismissed")
    expect(badge).to_have_text("1")
    assert page.url == url  # no navigation: everything happened in place
    page.screenshot(path=str(SCREENSHOTS / "smart-sales-inbox.png"), full_page=True)

    assert _row(site, world["an_b"]) | {"dismiss_reason": None} == {
        "state": "acted",
        "dismiss_reason": None,
        "dismiss_note": None,
        "actor": SELLER,
        "dismisser": None,
    }
    assert _row(site, world["an_a"]) == {
        "state": "dismissed",
        "dismiss_reason": "customer_declined",
        "dismiss_note": "Khách đã mua máy Pro ở cửa hàng khác",
        "actor": None,
        "dismisser": SELLER,
    }
    assert _row(site, world["an_none"])["dismiss_reason"] == "bad_timing"
    assert _row(site, world["an_churn"])["state"] == "new"

    # after a reload the dismissed ones are gone and the acted one stays open
    page.reload()
    expect(page.locator("#alerts > li")).to_have_count(2)
    expect(page.locator(f"#alert-{world['an_b']}")).to_have_attribute("data-state", "acted")
    expect(badge).to_have_text("1")

    # the alert's own page: the facts, and plain forms that come back to it; once loaded it
    # posts "seen" (the GET alone changes nothing), and acting next is not refused as stale
    page.click(f"#alert-{world['an_churn']} a.alert-headline")
    expect(page.locator("#alert-title")).to_be_visible()
    expect(page.locator(f"#alert-{world['an_churn']}-state")).to_have_attribute(
        "data-state", "seen"
    )
    assert _row(site, world["an_churn"])["state"] == "seen"
    page.locator(f"[data-act='{world['an_churn']}']").click()
    expect(page.locator("p.notice")).to_be_visible()
    expect(page.locator(f"#alert-{world['an_churn']}")).to_have_attribute("data-state", "acted")
    expect(page.locator(".error-box")).to_have_count(0)
    expect(badge).to_be_hidden()  # nothing waits for An any more
    page.screenshot(path=str(SCREENSHOTS / "smart-sales-alert.png"), full_page=True)
    assert _row(site, world["an_churn"])["actor"] == SELLER
    assert errors == []


def test_the_customer_page_offers_act_in_place(site, chromium):
    world = site["world"]
    errors: list[str] = []
    page = _signed_in(chromium, site["base"], "binh@example.com", errors)  # An's teammate
    page.goto(f"/ui/customer/{world['hung']}")
    panel = page.locator(f"#offers-{world['hung']}")
    expect(panel).to_be_visible()
    expect(page.locator(BADGE)).to_have_text("1")
    offer = panel.locator(f"#offer-{world['binh']}")
    expect(offer).to_have_attribute("data-state", "new")
    offer.locator(f"[data-act='{world['binh']}']").click()
    expect(page.locator(f"#offer-{world['binh']}")).to_have_attribute("data-state", "acted")
    expect(page.locator(BADGE)).to_be_hidden()  # nothing waits for Bình any more
    assert _row(site, world["binh"])["state"] == "acted"
    page.screenshot(path=str(SCREENSHOTS / "smart-sales-offers.png"), full_page=True)
    assert errors == []


def test_the_inbox_reads_right_to_left_in_persian(site, chromium):
    errors: list[str] = []
    page = _signed_in(chromium, site["base"], SELLER, errors)
    page.goto("/account")
    page.select_option("#language", "fa")
    with page.expect_navigation():
        page.click("#language-form button[type=submit]")
    page.goto("/smart_sales/inbox")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    box = page.locator("h1").bounding_box()
    width = page.evaluate("document.documentElement.clientWidth")
    assert box is not None and box["x"] + box["width"] > width / 2
    # the expected value sits at the row's end: on the left in a right-to-left page
    row = page.locator("#alerts > li").first
    value = row.locator(".alert-value").bounding_box()
    main = row.locator(".alert-main").bounding_box()
    assert value is not None and main is not None and value["x"] < main["x"]
    page.screenshot(path=str(SCREENSHOTS / "smart-sales-inbox-persian.png"), full_page=True)
    assert errors == []
