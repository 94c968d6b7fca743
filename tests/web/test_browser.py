"""End to end in a real browser: Playwright drives Debian's Chromium against ``crm serve``.

One database, one server and one Chromium serve the whole module (each test gets fresh browser
contexts): a SQLite file made with ``crm init``, ``crm modules enable uiext`` and ``crm demo``,
then a few customers and a deal entered through the UI's own forms. What the browser did is
checked in the page and, where it matters, in the database file. Screenshots of the main pages
land in ``test-artifacts/screenshots/``.

Playwright never downloads a browser here: Chromium is Debian's (``apt-get install chromium``).
Without Playwright or Chromium the module is skipped, unless ``CRM_REQUIRE_BROWSER=1`` (set by
CI), which makes that an error.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import unicodedata
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser_kit import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, require_browser, served
from tests.conftest import TEST_SECRET, Cli

require_browser()
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

ADMIN, ADMIN_PASSWORD = "admin@example.com", "Admin-pass-123"
LINGUIST, LINGUIST_PASSWORD = "lan@example.com", "Linguist-pass-123"
DUC = "Nguyễn Văn Đức"
LAN = "Trần Thị Lan"
XSS = '<img src=x onerror="window.__xss=1">'
DEAL = "Hợp đồng áo dài"
PHONE = 375

expect.set_options(timeout=10_000)


@dataclass
class Site:
    """The running CRM: its address, database file and the records made for the tests."""

    base: str
    db: Path
    ids: dict[str, int]

    def query(self, sql: str, *params: Any) -> list[tuple]:
        """Rows of ``sql`` read straight from the database file."""
        with closing(sqlite3.connect(self.db)) as conn:
            return conn.execute(sql, params).fetchall()


def _seed(base: str) -> dict[str, int]:
    """Customers and a deal, entered through the UI's forms as a signed-in administrator."""
    ids: dict[str, int] = {}
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:
        client.get("/login")

        def post(url: str, data: dict[str, str]) -> httpx.Response:
            form = {"csrf_token": client.cookies["crm_csrf"], **data}
            response = client.post(url, data=form, headers={"Origin": base})
            assert response.status_code == 303, (url, response.status_code, response.text)
            return response

        post("/login", {"email": ADMIN, "password": ADMIN_PASSWORD, "next": "/"})
        for key, data in (
            ("duc", {"display_name": DUC, "phone": "0912 345 678", "uiext_nickname": "Đức béo"}),
            ("lan", {"display_name": LAN}),
            ("xss", {"display_name": XSS}),
        ):
            location = post("/ui/customer/new", {"kind": "person", **data}).headers["location"]
            ids[key] = int(re.search(r"/ui/customer/(\d+)", location).group(1))
        deal = {"title": DEAL, "stage": "new", "customer_id": str(ids["duc"])}
        location = post("/ui/deal/new", {**deal, "amount_minor": "1,250,000"}).headers["location"]
        ids["deal"] = int(re.search(r"/ui/deal/(\d+)", location).group(1))
    return ids


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, plugin_site: Path) -> Iterator[Site]:
    """A fresh SQLite CRM with the ``uiext`` plugin, served by ``crm serve`` on a free port."""
    folder = tmp_path_factory.mktemp("browser")
    db = folder / "crm.db"
    env = {
        "CRM_DATABASE_URL": f"sqlite:///{db}",
        "CRM_SECRET_KEY": TEST_SECRET,
        "CRM_BACKUP_DIR": str(folder / "backups"),
        "CRM_LOAD_PLUGINS": "uiext",
        "CRM_CONFIG": "",
    }
    cli = Cli(env, plugin_site, folder)
    for args in (
        ("init", "--admin-email", ADMIN, "--admin-password", ADMIN_PASSWORD, "--no-config"),
        ("modules", "enable", "uiext"),
        ("demo", "--count", "40"),
        ("users", "add", LINGUIST, "--name", "Lan", "--role", "manager"),
    ):
        extra = ("--password", LINGUIST_PASSWORD) if args[0] == "users" else ()
        done = cli.run(*args, *extra)
        assert done.returncode == 0, (args, done.stdout, done.stderr)

    with served(env, folder, plugin_site) as base:
        yield Site(base, db, _seed(base))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, for the whole module."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _sign_in(page: Page, email: str, password: str) -> None:
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("form[action='/login'] button[type=submit]")


class Pages:
    """Opens pages in fresh browser contexts and records their console errors."""

    def __init__(self, browser: Browser, site: Site, sessions: dict[str, Any]) -> None:
        self.browser, self.site, self.sessions = browser, site, sessions
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    def open(self, signed_in_as: str | None = None, **options: Any) -> Page:
        """A page in a new context, signed in if asked: through the form the first time, then
        with the cookies that sign-in got (argon2 is slow on purpose)."""
        context = self.browser.new_context(
            base_url=self.site.base,
            locale="en-US",
            accept_downloads=True,
            storage_state=self.sessions.get(signed_in_as),
            **options,
        )
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: self._console(page, m))
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: uncaught {e}"))
        if signed_in_as and signed_in_as not in self.sessions:
            password = ADMIN_PASSWORD if signed_in_as == ADMIN else LINGUIST_PASSWORD
            page.goto("/login")
            _sign_in(page, signed_in_as, password)
            expect(page.locator("form[action='/logout']")).to_be_attached()
            self.sessions[signed_in_as] = context.storage_state()
        return page

    def _console(self, page: Page, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"{page.url}: {message.text}")

    def policy_errors(self) -> list[str]:
        """Content-Security-Policy violations and uncaught script errors seen so far."""
        words = ("Content Security Policy", "Refused", "uncaught")
        return [e for e in self.errors if any(w in e for w in words)]

    def close(self) -> None:
        """Close every context opened."""
        for context in self.contexts:
            context.close()


@pytest.fixture(scope="module")
def sessions() -> dict[str, Any]:
    """The cookies of each user once signed in, by e-mail."""
    return {}


@pytest.fixture
def pages(chromium: Browser, site: Site, sessions: dict[str, Any]) -> Iterator[Pages]:
    """Fresh browser contexts; no page may hit the CSP or throw (checked after the test too)."""
    opened = Pages(chromium, site, sessions)
    yield opened
    opened.close()
    assert opened.policy_errors() == []


def shot(page: Page, name: str) -> None:
    """Save a full-page screenshot as a test artefact."""
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def unaccented(text: str) -> str:
    """``Nguyễn Văn Đức`` → ``nguyen van duc``."""
    text = text.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def wait_for_slots(page: Page) -> None:
    """Wait until every lazily loaded panel (htmx ``hx-trigger=load``) has been swapped in."""
    expect(page.locator("[aria-busy=true]")).to_have_count(0)


# --- 1. sign-in -------------------------------------------------------------------------------


def test_sign_in_through_the_form_and_land_where_you_were_going(pages, site):
    page = pages.open()
    page.goto("/ui/customer")
    expect(page).to_have_url(re.compile(r"/login\?next=(%2F|/)ui(%2F|/)customer$"))
    expect(page.locator("#email")).to_be_focused()  # autofocus
    _sign_in(page, ADMIN, "not-the-password")
    expect(page.locator("#login-error")).to_have_text("Wrong e-mail or password.")
    expect(page.locator("#email")).to_have_attribute("aria-invalid", "true")
    _sign_in(page, ADMIN, ADMIN_PASSWORD)
    expect(page).to_have_url(f"{site.base}/ui/customer")
    expect(page.locator("h1")).to_have_text("Customers")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["crm_session"]  # HttpOnly, SameSite=Lax (core/web/sessions.py)
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert cookies["crm_csrf"]["httpOnly"] and cookies["crm_csrf"]["sameSite"] == "Strict"
    page.goto("/")
    expect(page.locator("h1")).to_have_text("Dashboard")
    wait_for_slots(page)
    (open_deals,) = site.query("SELECT count(*) FROM uiext_deal WHERE stage = 'new'")[0]
    expect(page.locator("#widget-uiext-open .big-number")).to_have_attribute(
        "data-value", str(open_deals)
    )
    shot(page, "dashboard")


# --- 2. search as you type --------------------------------------------------------------------


def test_typing_an_unaccented_name_updates_the_list_in_place(pages, site):
    names = [name for (name,) in site.query("SELECT display_name FROM core_customer")]
    assert [n for n in names if unaccented(n).startswith("nguyen van duc")] == [DUC]
    page = pages.open(signed_in_as=ADMIN)
    page.goto("/ui/customer")
    rows = page.locator("#list-results tr[data-id]")
    expect(rows).not_to_have_count(1)
    assert rows.count() > 10
    page.evaluate("window.__samePage = true")
    with page.expect_response(
        lambda r: "/ui/customer?" in r.url and r.request.headers.get("hx-request") == "true"
    ):
        page.locator("#q").press_sequentially("nguyen van duc")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", str(site.ids["duc"]))
    expect(rows.first).to_contain_text(DUC)
    expect(rows.first).to_contain_text("Đức béo")  # the plugin's column
    expect(page).to_have_url(re.compile(r"[?&]q=nguyen(\+|%20)van(\+|%20)duc"))  # hx-push-url
    assert page.evaluate("window.__samePage") is True, "the whole page was reloaded"
    shot(page, "list-search")


# --- 3. customer 360 --------------------------------------------------------------------------


def test_the_customer_360_loads_its_slots_and_isolates_the_broken_one(pages, site):
    page = pages.open(signed_in_as=ADMIN)
    page.goto(f"/ui/customer/{site.ids['duc']}")
    expect(page.locator("#record-title")).to_have_text(DUC)
    wait_for_slots(page)
    identities = page.locator("#slot-core-identities")
    expect(identities.locator("header")).to_have_text("Identities")
    expect(identities).to_contain_text("+84912345678")
    deals = page.locator("#slot-uiext-deals")
    expect(deals.locator("header")).to_have_text("Deals")
    expect(deals.get_by_role("link", name=DEAL)).to_have_attribute(
        "href", f"/ui/deal/{site.ids['deal']}"
    )
    broken = page.locator("#slot-uiext-broken")
    expect(broken.locator("header")).to_have_text("Broken panel")
    expect(broken.get_by_role("alert")).to_contain_text("could not be loaded")
    expect(page.locator("#slot-core-duplicates")).to_contain_text("No likely duplicates.")
    expect(page.locator("#tab-uiext")).to_contain_text("Đức béo")
    expect(page.locator('dd[data-field="phone"]')).to_have_text("+84912345678")
    shot(page, "customer-360")


# --- 4. validation, then save -----------------------------------------------------------------


def test_a_bad_email_is_marked_at_the_field_then_the_fix_is_saved(pages, site):
    lan = site.ids["lan"]
    page = pages.open(signed_in_as=ADMIN)
    page.goto(f"/ui/customer/{lan}")
    page.click("#edit-record")
    expect(page).to_have_url(f"{site.base}/ui/customer/{lan}/edit")
    email = page.locator("#field-email")
    email.fill("not-an-email")
    page.click("#save")
    expect(page.locator("#error-email")).to_be_visible()
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_attribute("aria-describedby", re.compile(r"\berror-email\b"))
    expect(email).to_have_value("not-an-email")  # what was typed is kept
    expect(page.locator("#field-display_name")).to_have_value(LAN)
    expect(page.get_by_role("alert")).to_be_visible()
    shot(page, "form-with-error")
    query = "SELECT value FROM core_customer_identity WHERE customer_id = ? AND channel = 'email'"
    assert site.query(query, lan) == []

    email.fill("lan.tran@example.vn")
    page.click("#save")
    expect(page).to_have_url(f"{site.base}/ui/customer/{lan}?saved=1")
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.locator('dd[data-field="email"]')).to_have_text("lan.tran@example.vn")
    assert site.query(query, lan) == [("lan.tran@example.vn",)]
    audit = site.query(
        "SELECT actor FROM core_audit_log WHERE model = 'customer' AND record_id = ?"
        " AND action = 'update'",
        str(lan),
    )
    assert audit and {actor for (actor,) in audit} == {ADMIN}


# --- 5. export of a filtered list -------------------------------------------------------------


def test_export_downloads_only_the_rows_of_the_search(pages, site):
    page = pages.open(signed_in_as=ADMIN)
    page.goto("/ui/customer")
    page.locator("#q").press_sequentially("nguyen van duc")
    expect(page.locator("#list-results tr[data-id]")).to_have_count(1)
    link = page.locator("#export-csv")
    expect(link).to_have_attribute("href", re.compile(r"q=nguyen"))
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == "customer.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows[0][:3] == ["id", "display_name", "uiext_nickname"]
    assert [(int(r[0]), r[1]) for r in rows[1:]] == [(site.ids["duc"], DUC)]
    exports = site.query(
        "SELECT actor, after FROM core_audit_log WHERE action = 'export' AND model = 'customer'"
    )
    assert (ADMIN, "nguyen van duc") in [(a, json.loads(f)["filters"].get("q")) for a, f in exports]


# --- 6. kanban drag and drop ------------------------------------------------------------------


def test_dragging_a_kanban_card_to_another_column_saves_and_audits_the_move(pages, site):
    deal = site.ids["deal"]
    page = pages.open(signed_in_as=ADMIN)
    page.goto("/ui/deal/kanban")
    card = page.locator(f"#card-{deal}")
    expect(page.locator(f'.kanban-column[data-group="new"] #card-{deal}')).to_be_visible()
    expect(card).to_have_attribute("draggable", "true")
    shot(page, "kanban")
    won = page.locator('.kanban-column[data-group="won"]')
    with (
        page.expect_response(lambda r: r.url.endswith(f"/ui/deal/{deal}/move")) as moved,
        page.expect_navigation(),  # ui.js reloads the board once the move is saved
    ):
        # grab the card by its padding, not by the move form's select inside it
        card.drag_to(won, source_position={"x": 4, "y": 4})
    assert moved.value.status == 200
    expect(won.locator(f"#card-{deal}")).to_be_visible()
    expect(page.locator(f'.kanban-column[data-group="new"] #card-{deal}')).to_have_count(0)
    expect(won.locator("h2 small")).to_have_text("(1)")
    assert site.query("SELECT stage, version FROM uiext_deal WHERE id = ?", deal) == [("won", 2)]
    changes = site.query(
        "SELECT actor, before, after FROM core_audit_log"
        " WHERE model = 'uiext.deal' AND action = 'update' AND record_id = ?",
        str(deal),
    )
    assert [(a, json.loads(b), json.loads(f)) for a, b, f in changes] == [
        (ADMIN, {"stage": "new"}, {"stage": "won"})
    ]
    shot(page, "kanban-after-move")


def test_kanban_cards_show_amounts_as_the_other_screens_do(pages, site):
    """The card's amount is money, formatted as in the list and the 360 panel."""
    deal = site.ids["deal"]
    page = pages.open(signed_in_as=ADMIN)
    page.goto("/ui/deal")
    row = page.locator(f'tr[data-id="{deal}"]')
    expect(row).to_contain_text(DEAL)
    listed = row.locator("td").nth(3).inner_text().strip()
    assert listed == "₫1,250,000"
    page.goto("/ui/deal/kanban")
    shown = page.locator(f"#card-{deal} .muted").inner_text().strip()  # rendered by the server
    assert shown == listed, f"the kanban card shows the amount as {shown!r}"


# --- 7. languages -----------------------------------------------------------------------------


def test_switching_to_vietnamese_then_persian_changes_lang_text_and_direction(pages, site):
    page = pages.open(signed_in_as=LINGUIST)
    html = page.locator("html")
    page.goto("/account")
    expect(html).to_have_attribute("lang", "en")
    page.select_option("#language", "vi")
    with page.expect_navigation():
        page.click("#language-form button[type=submit]")
    expect(html).to_have_attribute("lang", "vi")
    expect(html).to_have_attribute("dir", "ltr")
    menu = page.get_by_role("navigation", name="Chính")
    expect(menu.get_by_role("link", name="Khách hàng")).to_have_attribute("href", "/ui/customer")
    assert site.query("SELECT language FROM core_user WHERE email = ?", LINGUIST) == [("vi",)]
    page.goto("/ui/customer")
    expect(page.locator("h1")).to_have_text("Khách hàng")
    shot(page, "list-vietnamese")

    page.goto("/account")
    page.select_option("#language", "fa")
    with page.expect_navigation():
        page.click("#language-form button[type=submit]")
    expect(html).to_have_attribute("lang", "fa")
    expect(html).to_have_attribute("dir", "rtl")
    page.goto("/ui/customer")
    expect(html).to_have_attribute("dir", "rtl")
    expect(page.locator("h1")).to_have_text("مشتریان")
    assert site.query("SELECT language FROM core_user WHERE email = ?", LINGUIST) == [("fa",)]
    # right to left for real: the heading starts at the right edge of the page
    box = page.locator("h1").bounding_box()
    width = page.evaluate("document.documentElement.clientWidth")
    assert box["x"] + box["width"] > width / 2
    shot(page, "list-persian")


# --- 8. stored markup ---------------------------------------------------------------------------


def test_a_stored_img_tag_is_shown_as_text_and_never_runs(pages, site):
    xss = site.ids["xss"]
    page = pages.open(signed_in_as=ADMIN)
    page.goto("/ui/customer")
    expect(page.locator(f'tr[data-id="{xss}"]').get_by_role("link")).to_have_text(XSS)
    assert page.locator("main img").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"

    page.goto(f"/ui/customer/{xss}")
    expect(page.locator("#record-title")).to_have_text(XSS)
    expect(page).to_have_title(re.compile(re.escape(XSS)))
    wait_for_slots(page)
    page.wait_for_load_state("load")
    assert page.locator("img").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"


# --- 9. a phone -------------------------------------------------------------------------------


def test_the_list_fits_a_phone_and_the_form_works_with_the_keyboard(pages, site):
    page = pages.open(signed_in_as=ADMIN, viewport={"width": PHONE, "height": 740})
    page.goto("/ui/customer")
    expect(page.locator("#list-results tr[data-id]").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE + 2, f"the list page is {width}px wide on a {PHONE}px phone"
    # the wide table scrolls inside its own box instead
    box = page.locator("#list-results .overflow-auto")
    assert box.evaluate("e => e.scrollWidth > e.clientWidth")
    assert box.evaluate("e => getComputedStyle(e).overflowX") == "auto"
    shot(page, "phone-list")

    page.goto("/ui/customer/new")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE + 2
    for _ in range(40):
        if page.evaluate("document.activeElement.id") == "field-display_name":
            break
        page.keyboard.press("Tab")
    expect(page.locator("#field-display_name")).to_be_focused()
    page.keyboard.type("Khách Điện Thoại")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/ui/customer/\d+\?saved=1$"))
    expect(page.locator("#record-title")).to_have_text("Khách Điện Thoại")
    new_id = int(re.search(r"/ui/customer/(\d+)", page.url).group(1))
    assert site.query("SELECT display_name, kind FROM core_customer WHERE id = ?", new_id) == [
        ("Khách Điện Thoại", "person")
    ]
    shot(page, "phone-customer")


# --- 10. the Content-Security-Policy ----------------------------------------------------------


def test_the_main_pages_break_no_content_security_policy_rule(pages, site):
    page = pages.open(signed_in_as=ADMIN)
    for path in (
        "/",
        "/ui/customer",
        f"/ui/customer/{site.ids['duc']}",
        "/ui/customer/new",
        f"/ui/customer/{site.ids['lan']}/edit",
        "/ui/deal",
        f"/ui/deal/{site.ids['deal']}",
        "/ui/deal/kanban",
        "/account",
        "/admin/modules",
    ):
        response = page.goto(path)
        assert response.status == 200, path
        wait_for_slots(page)
        # the scripts loaded and run: htmx is there and swapped the lazy panels in
        assert page.evaluate("typeof window.htmx") == "object", path
    page.goto("/ui/customer")
    page.locator("#q").press_sequentially("tran")
    expect(page.locator("#list-results tr[data-id]").first).to_contain_text("Trần")
    assert pages.policy_errors() == []

    # and the check can fail: an inline script is refused, and the refusal is reported
    control = Pages(pages.browser, site, {})
    try:
        tab = control.open()
        tab.goto("/login")
        with tab.expect_console_message(lambda m: "Content Security Policy" in m.text):
            tab.evaluate(
                "() => { const s = document.createElement('script');"
                " s.textContent = 'window.__inline = 1'; document.body.append(s); }"
            )
        assert tab.evaluate("typeof window.__inline") == "undefined"
        assert control.policy_errors()
    finally:
        control.close()
