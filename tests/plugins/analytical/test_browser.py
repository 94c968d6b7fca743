"""Every analytics page in Debian's Chromium, on the demo data after ``crm analytics refresh``:
it renders, draws its charts, explains its figures, logs no error (CSP included), and reads
right to left in Persian."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_kit import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, require_browser, served
from tests.conftest import TEST_SECRET, Cli

require_browser()
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

ADMIN, PASSWORD = "admin@example.com", "Admin-pass-123"
expect.set_options(timeout=10_000)
PAGES = (
    "/analytical/",
    "/analytical/rfm",
    "/analytical/clv",
    "/analytical/value",
    "/analytical/behaviour",
    "/analytical/forecast",
    "/analytical/segments",
    "/analytical/campaigns",
    "/analytical/kpi",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, plugin_site: Path) -> Iterator[str]:
    """A SQLite CRM with operational + analytical, demo data and fresh snapshots, served."""
    folder = tmp_path_factory.mktemp("analytics-browser")
    env = {
        "CRM_DATABASE_URL": f"sqlite:///{folder / 'crm.db'}",
        "CRM_SECRET_KEY": TEST_SECRET,
        "CRM_BACKUP_DIR": str(folder / "backups"),
        "CRM_LOAD_PLUGINS": "operational,analytical",
        "CRM_CONFIG": "",
    }
    cli = Cli(env, plugin_site, folder)
    for args in (
        ("init", "--admin-email", ADMIN, "--admin-password", PASSWORD, "--no-config"),
        ("modules", "enable", "operational", "analytical"),
        ("demo", "--count", "300"),
        ("analytics", "refresh"),
    ):
        done = cli.run(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    with served(env, folder, plugin_site) as base:
        yield base


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _signed_in(chromium: Browser, base: str, errors: list[str]) -> Page:
    page = chromium.new_context(base_url=base).new_page()
    page.on(
        "console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    page.goto("/login")
    page.fill("#email", ADMIN)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    expect(page.locator("form[action='/logout']")).to_be_attached()
    return page


@pytest.mark.parametrize("path", PAGES)
def test_every_analytics_page_renders_its_charts_and_explains_its_figures(site, chromium, path):
    errors: list[str] = []
    page = _signed_in(chromium, site, errors)
    response = page.goto(path)
    assert response is not None and response.status == 200
    expect(page.locator("main h1, h1").first).to_be_visible()
    # the stylesheet of the module applies (no CSP refusal) and the charts are drawn
    charts = page.locator("canvas.chart")
    for index in range(charts.count()):
        expect(charts.nth(index)).to_have_attribute("data-drawn", "1")
    assert page.locator("details.how").count() >= 1, "no 'How is this computed?' note"
    assert "Not computed yet" not in page.locator("body").inner_text(), "refresh stored nothing"
    name = path.strip("/").replace("/", "-") or "overview"
    page.screenshot(path=str(SCREENSHOTS / f"analytics-{name}.png"), full_page=True)
    assert errors == []


def test_analytics_read_right_to_left_in_persian(site, chromium):
    errors: list[str] = []
    page = _signed_in(chromium, site, errors)
    page.goto("/account")
    page.select_option("#language", "fa")
    with page.expect_navigation():
        page.click("#language-form button[type=submit]")
    page.goto("/analytical/value")
    html = page.locator("html")
    expect(html).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("navigation", name="تحلیل‌ها")).to_be_visible()
    box = page.locator("h1").bounding_box()
    width = page.evaluate("document.documentElement.clientWidth")
    assert box is not None and box["x"] + box["width"] > width / 2
    page.screenshot(path=str(SCREENSHOTS / "analytics-value-persian.png"), full_page=True)
    assert errors == []
