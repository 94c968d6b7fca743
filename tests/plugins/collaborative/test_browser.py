"""The collaborative module in Debian's Chromium, on the demo data: a salesperson comments on a
customer and mentions a colleague through the autocomplete; the colleague sees the unread count
in the navigation, finds the notification in the inbox and marks it read without a reload.
No console error (CSP included), and the inbox reads right to left in Persian."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.browser_kit import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, require_browser, served
from tests.conftest import TEST_SECRET, Cli

require_browser()
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

ADMIN, PASSWORD = "admin@example.com", "Admin-pass-123"
DEMO_PASSWORD = "demo-password-2026"
SELLER, AGENT, MARKETER = (
    "sales1@demo.example",
    "service@demo.example",
    "marketing@demo.example",
)
expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, plugin_site: Path) -> Iterator[dict]:
    """A SQLite CRM with operational + collaborative and the demo data, served."""
    folder = tmp_path_factory.mktemp("collaborative-browser")
    url = f"sqlite:///{folder / 'crm.db'}"
    env = {
        "CRM_DATABASE_URL": url,
        "CRM_SECRET_KEY": TEST_SECRET,
        "CRM_BACKUP_DIR": str(folder / "backups"),
        "CRM_LOAD_PLUGINS": "operational,collaborative",
        "CRM_CONFIG": "",
    }
    cli = Cli(env, plugin_site, folder)
    for args in (
        ("init", "--admin-email", ADMIN, "--admin-password", PASSWORD, "--no-config"),
        ("modules", "enable", "operational", "collaborative"),
        ("demo", "--count", "120"),
    ):
        done = cli.run(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        customer = conn.execute(
            sa.text(
                "SELECT c.id, c.display_name FROM core_customer c"
                " JOIN core_user u ON u.id = c.owner_id WHERE u.email = :email"
                " ORDER BY c.id DESC LIMIT 1"
            ),
            {"email": SELLER},
        ).one()
    engine.dispose()
    with served(env, folder, plugin_site) as base:
        yield {"base": base, "customer_id": customer[0], "customer": customer[1]}


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
    page.fill("#password", DEMO_PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    expect(page.locator("form[action='/logout']")).to_be_attached()
    return page


def _unread(page: Page) -> int:
    badge = page.locator("nav [data-badge]")
    text = badge.text_content() or "0"
    return int(text) if text.strip().isdigit() else 0


def test_a_mention_typed_in_the_browser_reaches_the_colleague(site, chromium):
    errors: list[str] = []
    agent = _signed_in(chromium, site["base"], AGENT, errors)
    agent.goto("/collaborative/inbox")
    expect(agent.locator("nav [data-badge]")).to_be_visible()  # the demo mentioned them already
    before = _unread(agent)

    seller = _signed_in(chromium, site["base"], SELLER, errors)
    seller.goto(f"/ui/customer/{site['customer_id']}")
    box = seller.locator(".chatter-new textarea[data-mentions]")
    expect(box).to_be_visible()
    box.click()
    box.press_sequentially("Nhờ @Hoàng")
    option = seller.get_by_role("option", name="Hoàng Minh Tuấn")
    expect(option).to_be_visible()
    expect(option).to_have_attribute("aria-selected", "true")
    box.press("Enter")  # the keyboard picks the highlighted person, as a typist would
    box.press_sequentially("gọi lại cho khách trước thứ Sáu.")
    expect(box).to_have_value(
        re.compile(r"^Nhờ @\[Hoàng Minh Tuấn\]\(user:\d+\) gọi lại cho khách trước thứ Sáu\.$")
    )
    seller.locator(".chatter-new button[type=submit]").click()
    posted = seller.locator(".chatter .message").filter(has_text="gọi lại cho khách trước thứ Sáu")
    expect(posted.first).to_be_visible()
    expect(posted.first.locator(".mention")).to_have_text("@Hoàng Minh Tuấn")
    seller.screenshot(path=str(SCREENSHOTS / "collaborative-mention.png"), full_page=True)

    agent.reload()
    expect(agent.locator("nav [data-badge]")).to_have_text(str(before + 1))
    newest = agent.locator("#inbox .notification.unread").first
    expect(newest).to_contain_text(site["customer"])
    expect(newest).to_contain_text("gọi lại cho khách trước thứ Sáu")
    url = agent.url
    newest.locator("button[data-mark-read]").click()
    # marked read in place: no navigation, and the navigation's count follows
    expect(agent.locator("nav [data-badge]")).to_have_text(str(before))
    assert agent.url == url
    agent.screenshot(path=str(SCREENSHOTS / "collaborative-inbox.png"), full_page=True)
    assert errors == []


def test_the_inbox_and_the_feed_read_right_to_left_in_persian(site, chromium):
    errors: list[str] = []
    page = _signed_in(chromium, site["base"], MARKETER, errors)  # the demo's Persian speaker
    for path in ("/collaborative/inbox", "/collaborative/feed", "/collaborative/handoffs"):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        expect(page.locator("html")).to_have_attribute("dir", "rtl")
        box = page.locator("h1").bounding_box()
        width = page.evaluate("document.documentElement.clientWidth")
        assert box is not None and box["x"] + box["width"] > width / 2, path
    page.screenshot(path=str(SCREENSHOTS / "collaborative-feed-persian.png"), full_page=True)
    assert errors == []
