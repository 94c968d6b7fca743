"""The operational module in Debian's Chromium: drag a deal across the pipeline kanban, and a
customer answers a satisfaction survey through its one-time link (no account)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.browser_kit import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, require_browser, served
from tests.conftest import TEST_SECRET, Cli

require_browser()
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

ADMIN, PASSWORD = "admin@example.com", "Admin-pass-123"
expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, plugin_site: Path) -> Iterator[tuple[str, Path]]:
    """A SQLite CRM with the operational module and its demo data, served on loopback."""
    folder = tmp_path_factory.mktemp("ops-browser")
    db = folder / "crm.db"
    env = {
        "CRM_DATABASE_URL": f"sqlite:///{db}",
        "CRM_SECRET_KEY": TEST_SECRET,
        "CRM_BACKUP_DIR": str(folder / "backups"),
        "CRM_LOAD_PLUGINS": "operational",
        "CRM_CONFIG": "",
    }
    cli = Cli(env, plugin_site, folder)
    for args in (
        ("init", "--admin-email", ADMIN, "--admin-password", PASSWORD, "--no-config"),
        ("modules", "enable", "operational"),
        ("demo", "--count", "30"),
    ):
        done = cli.run(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    with served(env, folder, plugin_site) as base:
        yield base, db


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _query(db: Path, sql: str, *params: object) -> list[tuple]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def _signed_in(chromium: Browser, base: str) -> Page:
    page = chromium.new_context(base_url=base).new_page()
    page.goto("/login")
    page.fill("#email", ADMIN)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    expect(page.locator("form[action='/logout']")).to_be_attached()
    return page


def test_dragging_a_deal_to_the_next_stage_saves_and_audits_it(site, chromium):
    base, db = site
    page = _signed_in(chromium, base)
    page.goto("/ui/opportunity/kanban")
    first = page.locator(".kanban-column[data-group='new'] .card").first
    deal_id = int(first.get_attribute("data-id"))
    card = page.locator(f"#card-{deal_id}")
    with page.expect_navigation():
        card.drag_to(page.locator(".kanban-column[data-group='qualified'] h2"))
    expect(page.locator(f".kanban-column[data-group='qualified'] #card-{deal_id}")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "pipeline-kanban.png", full_page=True)
    assert _query(
        db, "SELECT stage, probability FROM operational_opportunity WHERE id = ?", deal_id
    ) == [("qualified", 25)]
    moves = _query(
        db,
        "SELECT actor, after FROM core_audit_log WHERE model = 'operational.opportunity' "
        "AND action = 'update' AND record_id = ?",
        str(deal_id),
    )
    assert len(moves) == 1 and moves[0][0] == ADMIN and '"qualified"' in moves[0][1]


def test_a_customer_answers_the_survey_through_its_link(site, chromium):
    base, db = site
    page = _signed_in(chromium, base)
    ticket_id = _query(db, "SELECT id FROM operational_ticket WHERE status = 'open' LIMIT 1")[0][0]
    page.goto(f"/ui/ticket/{ticket_id}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("form[action='/ui/ticket/actions/resolve'] button")
    text = page.locator("p.notice").inner_text()
    link = re.search(r"https?://\S+/operational/survey/\S+", text).group(0)
    path = httpx.URL(link).path
    customer = chromium.new_context(base_url=base).new_page()  # no account, no cookies
    customer.goto(path)
    customer.check("input[name='rating'][value='4']")
    customer.fill("textarea[name='comment']", "Nhân viên hỗ trợ nhiệt tình")
    with customer.expect_navigation():
        customer.click("form button[type=submit]")
    expect(customer.locator("main h1")).to_be_visible()  # the thank-you page
    customer.screenshot(path=SCREENSHOTS / "survey-answered.png", full_page=True)
    assert _query(
        db,
        "SELECT rating, comment FROM operational_survey"
        " WHERE ticket_id = ? AND answered_at IS NOT NULL",
        ticket_id,
    ) == [(4, "Nhân viên hỗ trợ nhiệt tình")]
    again = customer.goto(path)
    assert again.status == 410  # one-time: already answered
