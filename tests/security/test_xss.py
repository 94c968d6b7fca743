"""Stored XSS, checked in a real browser: a corpus of payloads goes into every text column of
every model (through the API, the UI's forms, the commands and the product's own jobs), then
every GET page of the route table (and the links found on them), every export and every e-mail
the product sent is opened in Debian's Chromium. A payload that runs fails the test, naming the
page and the payload. The generic forms posted with payloads, the mention suggestions built by
script, and payloads given in URLs (reflected) are checked the same way.

How "runs" is seen (``tests/security/xss_corpus.py``): every payload calls ``__xss(N)``,
defined before any page script; dialogs and script errors count too. The browser ignores the
Content Security Policy here (``bypass_csp``): the policy is the second wall, and this test
checks the first one, escaping, which must hold on its own. After each page settles, its DOM
(every frame) is also searched for markup a payload would have made even if it did not fire:
event-handler attributes, ``javascript:`` URLs, script elements and htmx ``hx-on`` attributes
holding the payload text, and template expressions some engine evaluated (``81xss``). The test
is not blind: the sentinel fires on a page built to run a payload, every payload of the corpus
is shown, as text, on some page, and the mails and exports hold payloads.

The API's GET answers are read over HTTP: JSON (or a CSV attachment) with ``nosniff``, which a
browser never renders as a page. One SQLite database and one server serve the module (the data
path is the same on PostgreSQL, which the access matrix and the API fuzzing cover). Quick
profile: 16 payloads; the long profile (``CRM_RELIABILITY_PROFILE=long``) stores the whole
corpus and follows every link found.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

import pytest
import sqlalchemy as sa

from tests.browser_kit import CHROMIUM, CHROMIUM_ARGS, require_browser, served
from tests.conftest import TEST_SECRET
from tests.profile import LONG, pick
from tests.security import xss_seed
from tests.security.xss_corpus import ACTIVE, EVALUATED, FORMULA_STARTS, SIGNATURE
from tests.smtp_kit import SmtpServer

require_browser()
from playwright.sync_api import Browser, BrowserContext, Error, Page, sync_playwright  # noqa: E402

#: Defined in every frame before any page script: records a payload that ran.
SENTINEL = """
window.__xss = function (n) {
  try { window.top.__xssHits.push(String(n) + ' @ ' + location.href); } catch (e) {}
};
if (window === window.top) { window.__xssHits = []; }
"""
#: Markup a payload would have made, found in the DOM of every frame, whether it fired or not.
SCAN = r"""
() => {
  const found = [];
  const sig = /xss/i;
  const urlAttrs = ['href', 'src', 'action', 'formaction', 'data', 'xlink:href', 'poster'];
  const visit = (root) => {
    for (const el of root.querySelectorAll('*')) {
      for (const attr of el.attributes) {
        const name = attr.name.toLowerCase(), value = attr.value;
        if (!sig.test(value) && name !== 'srcdoc') continue;
        if (name.startsWith('on')) found.push(`<${el.localName} ${name}="${value}">`);
        else if (name.startsWith('hx-on') || name.startsWith('data-hx-on'))
          found.push(`<${el.localName} ${name}="${value}">`);
        else if (urlAttrs.includes(name) && /^\s*(javascript|vbscript|data):/i.test(value))
          found.push(`<${el.localName} ${name}="${value}">`);
        else if (name.match(/^(data-)?hx-(vals|headers)$/) && /^\s*(js|javascript):/i.test(value))
          found.push(`<${el.localName} ${name}="${value}">`);
        else if (name === 'srcdoc') found.push(`<${el.localName} srcdoc="${value}">`);
      }
      if (el.localName === 'script' && /__xss/.test(el.textContent)) {
        const type = (el.getAttribute('type') || '').toLowerCase();
        if (!type || type.includes('javascript') || type === 'module')
          found.push(`<script>${el.textContent.slice(0, 120)}</script>`);
        else if (type.includes('json')) {
          try { JSON.parse(el.textContent); } catch (e) { found.push(`broken JSON block: ${e}`); }
        }
      }
      if (el.shadowRoot) visit(el.shadowRoot);
    }
  };
  visit(document);
  const text = document.body ? document.body.innerText : '';
  for (const evaluated of EVALUATED)
    if (text.includes(evaluated)) found.push(`evaluated: ${evaluated}`);
  const links = Array.from(document.querySelectorAll('a[href]'), a => a.getAttribute('href'));
  const hits = window === window.top ? (window.__xssHits || []) : [];
  return {found, text, links, hits};
}
""".replace("EVALUATED", json.dumps(list(EVALUATED)))
#: Paths never opened: they end the session.
NOT_VISITED = {"/logout"}
#: How many links found on pages (beyond the route table) are followed.
CRAWL_LIMIT = pick(80, 1000)
#: Variables of the test run itself, kept while the seeding clears the other ``CRM_*``.
KEPT_ENV = ("CRM_TEST_POSTGRES_URL", "CRM_REQUIRE_POSTGRES", "CRM_REQUIRE_BROWSER")


@dataclass
class Site:
    """The served CRM, what was seeded into it, and the routes and UI it has."""

    base: str
    seeded: xss_seed.Seeded
    engine: sa.Engine
    routes: list[str]
    views: dict[str, set[str]]
    #: The export permission of each UI resource.
    exports: dict[str, str]
    #: Slot ids with the UI resource of the record page they sit on.
    slots: list[tuple[str, str]]
    widgets: list[str]
    #: Every permission the modules declare (the administrator holds them all).
    permissions: set[str]
    folder: Path


@dataclass
class Visit:
    """What one URL did in the browser."""

    url: str
    status: int | None = None
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    found: list[str] = field(default_factory=list)
    text: str = ""
    download: bytes | None = None
    links: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, plugin_site: Path) -> Iterator[Site]:
    """Every module enabled, payloads everywhere (``xss_seed.seed``), served on loopback."""
    from core import modules
    from core.bootstrap import initialise
    from core.runtime import Crm
    from core.settings import load_settings
    from core.ui.registry import build
    from core.web.access import iter_routes
    from core.web.app import create_app

    folder = tmp_path_factory.mktemp("xss")
    smtp = SmtpServer()
    smtp.handler = xss_seed.Refusing(f"{ACTIVE[2].text} {SIGNATURE}")
    smtp.start()
    env = {
        "CRM_DATABASE_URL": f"sqlite:///{folder / 'crm.db'}",
        "CRM_SECRET_KEY": TEST_SECRET,
        "CRM_BACKUP_DIR": str(folder / "backups"),
        "CRM_LOAD_PLUGINS": ",".join(xss_seed.MODULES),
        "CRM_SMTP_URL": smtp.url,
        "CRM_COLLABORATIVE_SEND_IN_BACKGROUND": "false",
        "CRM_WEBHOOKS_IN_SERVER": "false",
        "CRM_WEBHOOKS_ALLOW_PRIVATE": "true",
    }
    with pytest.MonkeyPatch.context() as patch:
        # the commands the seeding runs in-process read the environment and ./crm.toml
        for key in [k for k in os.environ if k.startswith("CRM_") and k not in KEPT_ENV]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        patch.chdir(folder)
        crm = Crm(load_settings(environ=env))
        try:
            initialise(crm, xss_seed.ADMIN, xss_seed.ADMIN_PASSWORD)
            modules.enable(crm, list(xss_seed.MODULES))
            crm.refresh()
            app = create_app(crm)
            with xss_seed.HostileReceiver(f"{ACTIVE[0].text} {SIGNATURE}") as receiver:
                seeded = xss_seed.seed(crm, app, env, smtp, receiver.url, folder)
            registry = build(crm)
            views = {
                name: {k for k in ("list", "form", "detail", "kanban") if registry.view(name, k)}
                for name in registry.resources
            }
            exports = {n: r.permission("export") for n, r in registry.resources.items()}
            routes = [e.path for e in iter_routes(app) if e.method == "GET"]
            slots = [(s.id, s.resource) for s in registry.slots]
            widgets = [w.id for w in registry.widgets]
            with crm.db.session() as session:
                from core.models import Permission

                permissions = set(session.scalars(sa.select(Permission.name)))
        finally:
            crm.close()
            smtp.stop()
    engine = sa.create_engine(env["CRM_DATABASE_URL"])
    with served({**env, "CRM_CONFIG": ""}, folder, plugin_site) as base:
        yield Site(
            base, seeded, engine, routes, views, exports, slots, widgets, permissions, folder
        )
    engine.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Tab:
    """One browser tab with the sentinel installed, CSP bypassed, dialogs and errors recorded;
    :meth:`visit` opens a URL, waits until its requests (htmx fragments) are done, and
    reports what ran or was injected."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.context: BrowserContext = browser.new_context(
            base_url=base, bypass_csp=True, accept_downloads=True
        )
        self.context.add_init_script(SENTINEL)
        self.page: Page = self.context.new_page()
        self.base = base
        self.events: list[str] = []
        self.inflight = 0
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda exc: self.events.append(f"page error: {exc}"))
        self.page.on("request", lambda _: self._count(1))
        self.page.on("requestfinished", lambda _: self._count(-1))
        self.page.on("requestfailed", lambda _: self._count(-1))

    def _count(self, step: int) -> None:
        self.inflight = max(0, self.inflight + step)

    def _dialog(self, dialog: Any) -> None:
        self.events.append(f"{dialog.type} dialog: {dialog.message}")
        dialog.dismiss()

    def sign_in(self, email: str, password: str) -> None:
        """Sign in through the login form."""
        self.page.goto("/login")
        self.page.fill("#email", email)
        self.page.fill("#password", password)
        with self.page.expect_navigation():
            self.page.click("form[action='/login'] button[type=submit]")
        assert urlsplit(self.page.url).path != "/login", "the sign-in failed"

    def settle(self, timeout: float = 8.0) -> None:
        """Wait until no request has been in flight for a moment."""
        deadline, quiet = time.monotonic() + timeout, 0
        while time.monotonic() < deadline and quiet < 2:
            self.page.wait_for_timeout(30)
            quiet = quiet + 1 if self.inflight == 0 else 0

    def visit(self, url: str) -> Visit:
        """Open ``url`` and report what happened."""
        seen = Visit(url)
        self.events.clear()
        self.inflight = 0
        download: list[Any] = []
        self.page.once("download", lambda d: download.append(d))
        try:
            response = self.page.goto(url, wait_until="load")
        except Error as exc:
            if "Download is starting" not in str(exc) and "ERR_ABORTED" not in str(exc):
                raise
            response = None
            self.page.wait_for_timeout(100)
        if download:  # not rendered; its headers are checked by the CSV test
            seen.download = Path(download[0].path()).read_bytes()
            seen.status = 200
            return seen
        if response is not None:
            seen.status = response.status
            seen.headers = response.all_headers()
            seen.content_type = seen.headers.get("content-type", "")
        return self.inspect(seen)

    def inspect(self, seen: Visit) -> Visit:
        """Once the page settled: the payloads that ran, and what the DOM search found."""
        self.settle()
        hits: list[str] = []
        for frame in self.page.frames:
            try:
                result = frame.evaluate(SCAN)
            except Error:  # a frame that went away meanwhile
                continue
            seen.found += result["found"]
            if frame is self.page.main_frame:
                seen.text, seen.links, hits = result["text"], result["links"], result["hits"]
        for hit in hits:
            number, _, where = hit.partition(" @ ")
            seen.found.append(f"__xss({number}) ran in {where}")
        seen.found += self.events
        return seen

    def close(self) -> None:
        """Close the tab's context."""
        self.context.close()


def _queries(seeded: xss_seed.Seeded) -> dict[str, str]:
    """Query strings for the GET routes that require some (by path)."""
    customer = f"record_type=customer&record_id={seeded.customers[0]}"
    return {
        "/api/customers/lookup": f"external_ref={quote(seeded.params['external_ref'])}",
        "/api/collaborative/messages": customer,
        "/api/collaborative/followers": customer,
        "/api/collaborative/links": customer,
        "/api/collaborative/shares": f"customer_id={seeded.customers[0]}",
        "/collaborative/feed/more": "before=2100-01-01T00%3A00%3A00Z",  # everything so far
    }


def _expand(site: Site) -> tuple[list[str], list[str]]:
    """Concrete URLs for every GET route, and the routes no seeded value can expand."""
    seeded = site.seeded
    urls: list[str] = []
    missing: list[str] = []
    tokens = {
        "/operational/survey/{token}": seeded.public_links["open_survey"],
        "/operational/unsubscribe/{token}": seeded.public_links["unsubscribe"],
    }
    queries = _queries(seeded)
    kinds = {"": "list", "/new": "form", "/kanban": "kanban", "/export.csv": "list"}
    for path in site.routes:
        if path in NOT_VISITED:
            continue
        if path.startswith("/ui/{name}"):
            rest = path.removeprefix("/ui/{name}")
            for name, views in sorted(site.views.items()):
                kind = kinds.get(rest, "form" if rest.endswith("/edit") else "detail")
                if kind not in views:
                    continue
                if rest == "/export.csv" and site.exports[name] not in site.permissions:
                    continue  # no module declares the export: the list offers none
                if "{record_id:int}" not in rest:
                    urls.append(f"/ui/{name}{rest}")
                elif name in seeded.resources:
                    record = str(seeded.resources[name])
                    urls.append(f"/ui/{name}{rest.replace('{record_id:int}', record)}")
                else:
                    missing.append(f"{path} for resource {name}")
        elif path == "/ui/slots/{slot_id}/{record_id:int}":
            for slot, resource in site.slots:
                if resource in seeded.resources:
                    urls.append(f"/ui/slots/{slot}/{seeded.resources[resource]}")
                else:
                    missing.append(f"{path} for slot {slot} (no {resource} seeded)")
        elif path == "/ui/widgets/{widget_id}":
            urls += [f"/ui/widgets/{widget}" for widget in site.widgets]
        elif path == "/collaborative/chatter/{record_type}/{record_id:int}":
            urls += [f"/collaborative/chatter/{t}/{i}" for t, i in seeded.record_types.items()]
        elif path in tokens:
            urls.append(tokens[path])
        else:
            url = path
            for param in re.findall(r"{([^}]+)}", path):
                name = param.split(":")[0]
                if name not in seeded.params:
                    missing.append(f"{path}: no value for {{{name}}}")
                    break
                url = url.replace(f"{{{param}}}", str(seeded.params[name]))
            else:
                urls.append(f"{url}?{queries[path]}" if path in queries else url)
    return list(dict.fromkeys(urls)), missing


def _crawlable(base: str, href: str | None) -> str | None:
    """``href`` as a same-origin path worth following, else ``None``."""
    if not href or href.startswith(("#", "mailto:", "tel:")):
        return None
    parts = urlsplit(urljoin(base + "/", href))
    if f"{parts.scheme}://{parts.netloc}" != base or parts.path in NOT_VISITED:
        return None
    if parts.path.startswith("/static/"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _shown(payload_text: str) -> str:
    """What of a payload must appear as text on some page: its sentinel call, or itself."""
    call = re.search(r"__xss\(\d+\)", payload_text)
    return call.group(0) if call else " ".join(payload_text.split())


def _shape(url: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What makes a page different from another: its path with ids generalised, and its query
    with word-like values kept (``report=sales``) and others (ids, dates, cursors) generalised."""
    parts = urlsplit(url)
    path = re.sub(r"/\d+(?=/|$)", "/{n}", parts.path)
    query = parse_qsl(parts.query, keep_blank_values=True)
    return path, tuple(
        sorted((k, v if re.fullmatch(r"[a-z_]{1,40}", v) else "*") for k, v in query)
    )


@pytest.fixture(scope="module")
def visits(site: Site, chromium: Browser) -> dict[str, Visit]:
    """Every page of the route table opened in Chromium by the signed-in administrator, then the
    links found on them: in the quick profile those of a new shape (another report, filter or
    sort), in the long profile every one, up to ``CRAWL_LIMIT``. The API's GET routes are read
    by :func:`api_answers`."""
    urls, missing = _expand(site)
    assert not missing, f"routes the seeding gives no value for: {missing}"
    pages = [u for u in urls if not _is_api(u)]
    tab = Tab(chromium, site.base)
    tab.sign_in(xss_seed.ADMIN, xss_seed.ADMIN_PASSWORD)
    done: dict[str, Visit] = {}
    # beyond the route table: the survey page once answered
    queue = [*pages, site.seeded.public_links["survey"]]
    shapes = {_shape(u) for u in queue}
    crawled = 0
    try:
        while queue:
            url = queue.pop(0)
            if url in done:
                continue
            done[url] = seen = tab.visit(url)
            for href in seen.links:
                found = _crawlable(site.base, href)
                if not found or found in done or found in queue or crawled >= CRAWL_LIMIT:
                    continue
                if not LONG and _shape(found) in shapes:
                    continue
                shapes.add(_shape(found))
                queue.append(found)
                crawled += 1
    finally:
        tab.close()
    return done


def _is_api(url: str) -> bool:
    return url.startswith("/api/") or url.split("?")[0] == "/openapi.json"


@contextmanager
def _signed_in_client(site: Site) -> Iterator[Any]:
    """An HTTP client signed in as the administrator through the login form."""
    import httpx

    with httpx.Client(base_url=site.base, timeout=30) as client:
        client.get("/login")
        form = {
            "csrf_token": client.cookies["crm_csrf"],
            "email": xss_seed.ADMIN,
            "password": xss_seed.ADMIN_PASSWORD,
            "next": "/",
        }
        client.post("/login", data=form, headers={"Origin": site.base})
        yield client


@pytest.fixture(scope="module")
def api_answers(site: Site) -> dict[str, Any]:
    """Every GET route of the API, read by the signed-in administrator."""
    urls, _ = _expand(site)
    with _signed_in_client(site) as client:
        return {url: client.get(url) for url in urls if _is_api(url)}


def _server_errors(site: Site) -> str:
    """The tracebacks the server logged."""
    log = (site.folder / "server.log").read_text(encoding="utf-8", errors="replace")
    return "\n".join(part for part in log.split("ERROR:") if "Traceback" in part)[-6000:]


def test_the_sentinel_sees_a_payload_that_runs(site: Site, chromium: Browser) -> None:
    """The oracle is live: a page that does run a payload is caught, by the call and by the
    DOM search (otherwise the other tests could pass while blind)."""
    tab = Tab(chromium, site.base)
    try:
        tab.page.route(
            "**/sentinel-check",
            lambda route: route.fulfill(
                content_type="text/html", body=f"<p>{ACTIVE[0].text}</p><p>{ACTIVE[2].text}</p>"
            ),
        )
        seen = tab.visit("/sentinel-check")
    finally:
        tab.close()
    assert "__xss(1) ran" in " ".join(seen.found), seen.found
    assert any("onerror" in f for f in seen.found), seen.found
    assert any("onload" in f for f in seen.found), seen.found


def test_every_text_column_holds_a_payload(site: Site) -> None:
    """Every ``String``/``Text`` column of every enabled module's table holds a payload, but
    the listed columns that cannot hold user text; the list names only real columns."""
    columns = {f"{t}.{c}" for t, c in xss_seed.text_columns(site.engine)}
    assert not set(xss_seed.NOT_USER_TEXT) - columns, "allow-list entries that are no column"
    assert xss_seed.columns_without_payload(site.engine) == []


def test_no_payload_runs_on_any_page(site: Site, visits: dict[str, Visit]) -> None:
    """Every page, fragment, widget and slot stays inert; none fails (5xx), none of the route
    table refuses the seeded records, and every payload is shown as text somewhere."""
    problems = [f"{url}: {v.found}" for url, v in visits.items() if v.found]
    problems += [
        f"{url}: answered {v.status}"
        for url, v in visits.items()
        if v.status is None or v.status >= 500
    ]
    routed = [url for url in _expand(site)[0] if not _is_api(url)]
    problems += [f"{u}: refused with {visits[u].status}" for u in routed if visits[u].status >= 400]
    text = "\n".join(v.text for v in visits.values())
    problems += [
        f"payload shown on no page: {p.text!r}" for p in ACTIVE if _shown(p.text) not in text
    ]
    if any("answered" in p for p in problems):
        problems.append(_server_errors(site))
    assert not problems, "\n".join(problems)


def test_api_answers_are_json_and_never_sniffed(api_answers: dict[str, Any]) -> None:
    """Every GET route of the API answers the seeded records (no 5xx, no refusal), as JSON (a
    CSV export as an attachment) with ``nosniff``: a browser never renders it as a page."""
    assert len(api_answers) >= 40, sorted(api_answers)
    for url, response in api_answers.items():
        assert response.status_code < 400, (url, response.status_code, response.text[:500])
        kind = response.headers["content-type"]
        if url.split("?")[0].endswith(".csv"):
            assert kind.startswith("text/csv"), (url, kind)
            assert response.headers["content-disposition"].startswith("attachment"), url
        else:
            assert kind.startswith("application/json"), (url, kind)
        assert response.headers["x-content-type-options"] == "nosniff", url


def test_csv_exports_are_downloads_with_formulas_neutralised(
    site: Site, visits: dict[str, Visit], api_answers: dict[str, Any]
) -> None:
    """Every export: the browser downloads it (``text/csv``, an attachment, ``nosniff``: never
    a document it renders, so nothing in it can run); no cell starts with ``= + - @`` (or a tab
    or carriage return), and payload cells are there, so the check is not blind."""
    exports = {url: v.download for url, v in visits.items() if v.download is not None}
    with _signed_in_client(site) as client:
        for url in exports:
            response = client.get(url)
            assert response.status_code == 200, url
            assert response.headers["content-type"].startswith("text/csv"), url
            assert response.headers["content-disposition"].startswith("attachment"), url
            assert response.headers["x-content-type-options"] == "nosniff", url
    exports |= {url: r.content for url, r in api_answers.items() if url.endswith(".csv")}
    assert len(exports) >= 5, f"too few exports reached: {sorted(exports)}"
    with_payload = 0
    for url, content in exports.items():
        for row in csv.reader(io.StringIO(content.decode("utf-8-sig"))):
            for cell in row:
                assert not cell.startswith((*FORMULA_STARTS, "\t", "\r")), (url, cell)
                with_payload += SIGNATURE in cell.lower()
    assert with_payload >= len(exports), "the exports hold too few payloads to check"


def _serve(body: str, content_type: str) -> Any:
    """A route handler answering ``body`` as ``content_type``."""

    def handle(route: Any) -> None:
        route.fulfill(content_type=content_type, body=body)

    return handle


def test_no_payload_runs_in_the_mails(site: Site, chromium: Browser) -> None:
    """Every e-mail the product sent (mailings, notifications, digests), each part opened in
    Chromium as its own content type would have it; nothing runs, no template expression of
    stored text is evaluated, and the payloads are in the mails (so the check is not blind)."""
    mails = site.seeded.mails
    kinds = {re.match(r"\D+?(?=-\d)", m["Message-ID"].strip("<>")).group(0) for m in mails}
    assert kinds >= {"mailing", "collaborative-notification", "collaborative-digest"}, kinds
    tab = Tab(chromium, site.base)
    problems: list[str] = []
    carried = 0
    try:
        for number, mail in enumerate(mails):
            for part_number, part in enumerate(mail.walk()):
                if part.is_multipart():
                    continue
                body = part.get_content()
                kind = part.get_content_type()
                carried += SIGNATURE in body.lower()
                if any(e in body for e in EVALUATED):
                    problems.append(f"mail {number} ({mail['Subject']}): a template was evaluated")
                if kind == "text/html":
                    tab.events.clear()
                    tab.page.set_content(body)
                    seen = tab.inspect(Visit(f"mail {number}"))
                else:  # what a mail client shows: the part as its own content type
                    path = f"/mail-{number}-{part_number}"
                    tab.page.route(f"**{path}", _serve(body, f"{kind}; charset=utf-8"))
                    seen = tab.visit(path)
                if seen.found:
                    problems.append(f"mail {number} ({mail['Subject']}) {kind}: {seen.found}")
    finally:
        tab.close()
    assert not problems, "\n".join(problems)
    assert carried >= len(mails) // 2, "the mails carry no payload: the check saw nothing"
    for mail in mails:
        for header in ("Subject", "To"):
            assert "\n" not in str(mail[header]) and "\r" not in str(mail[header]), header


#: Fills every text field of the first form on the page with payloads in turn (an e-mail field
#: gets one too, which is invalid: the form comes back with the error and the values echoed).
FILL = """
(payloads) => {
  const form = document.querySelector('main form[method=post]');
  let n = 0;
  for (const el of form.querySelectorAll('input, textarea')) {
    if (el.disabled || el.readOnly || ['hidden', 'checkbox', 'radio'].includes(el.type)) continue;
    el.value = payloads[n++ % payloads.length];
  }
  return n;
}
"""


#: Whether the page shows a payload, as text or as a form field's value.
SHOWS_PAYLOAD = """
() => document.body.innerText.includes('__xss(')
  || Array.from(document.querySelectorAll('input, textarea')).some(e => e.value.includes('__xss('))
"""


def test_forms_posted_with_payloads_come_back_inert(
    site: Site, chromium: Browser, visits: dict[str, Visit]
) -> None:
    """Every generic form (new and edit), filled with payloads in the browser and posted: the
    page that comes back (the saved record, or the form with its errors and the values echoed)
    runs nothing."""
    forms = [u for u in visits if re.fullmatch(r"/ui/\w+/(new|\d+/edit)", u)]
    assert len(forms) >= 10, forms
    texts = [p.text for p in ACTIVE]
    tab = Tab(chromium, site.base)
    problems: list[str] = []
    try:
        tab.sign_in(xss_seed.ADMIN, xss_seed.ADMIN_PASSWORD)
        for number, url in enumerate(forms):
            tab.visit(url)
            filled = tab.page.evaluate(FILL, texts[number:] + texts[:number])
            assert filled, f"{url}: no text field to fill"
            tab.events.clear()
            with tab.page.expect_navigation():
                tab.page.click("main form[method=post] button[type=submit]")
            seen = tab.inspect(Visit(f"{url} (posted)"))
            if seen.found:
                problems.append(f"{url} posted: {seen.found}")
            if not tab.page.evaluate(SHOWS_PAYLOAD):
                problems.append(f"{url} posted: the page that came back shows no payload")
    finally:
        tab.close()
    assert not problems, "\n".join(problems)


def test_mention_suggestions_show_names_as_text(site: Site, chromium: Browser) -> None:
    """Typing "@" in a record's discussion lists people whose names are payloads (the list is
    built by script from the API's answer): they show as text, nothing runs."""
    tab = Tab(chromium, site.base)
    try:
        tab.sign_in(xss_seed.ADMIN, xss_seed.ADMIN_PASSWORD)
        tab.visit(f"/ui/customer/{site.seeded.customers[0]}")
        box = tab.page.locator("textarea[data-mentions]").first
        box.click()
        box.press_sequentially("@x")
        options = tab.page.locator("[role=listbox] [role=option]")
        options.first.wait_for()
        labels = options.all_inner_texts()
        seen = tab.inspect(Visit("mention suggestions"))
    finally:
        tab.close()
    assert any("__xss(" in label for label in labels), labels
    assert not seen.found, seen.found


#: Template files that may turn escaping off, with why the HTML they let through is safe.
#: Empty: no template needs raw HTML from data (messages are escaped in Python, see
#: ``plugins.collaborative.messages.render_body``). Add one only with sanitised HTML.
RAW_HTML_ALLOWED: dict[str, str] = {}
RAW_HTML = re.compile(r"\|\s*safe\b|autoescape\s+false|\{%-?\s*autoescape\s+off|Markup\(")
#: ``_()`` marks its result safe: only literal msgids may go in (``tr()`` is for variables).
GETTEXT_OF_VARIABLE = re.compile(r"(?<![\w.])_\(\s*[^\s\"')]")


def test_templates_escape_everything_they_show() -> None:
    """Jinja2 autoescape stays on for every template of the core and the modules (files and
    strings); no template turns it off, marks text safe or translates a variable with ``_()``
    unless listed in ``RAW_HTML_ALLOWED`` with the reason its HTML is sanitised."""
    from core import i18n
    from core.web.ui.templating import Translator, build_environment
    from tests.conftest import ROOT

    folders = [(p.parent.name, p) for p in sorted(ROOT.glob("plugins/*/templates"))]
    env = build_environment(folders, Translator(i18n.Catalogs([])), "UTC")
    names = env.list_templates()
    assert len(names) > 80, names
    assert all(env.autoescape(name) for name in names if name.endswith(".html"))
    assert env.from_string("{{ x }}").render(x=ACTIVE[0].text) == (
        "&#34;&gt;&lt;img src=x onerror=__xss(1)&gt;"
    )
    files = sorted(ROOT.glob("core/**/*.html")) + sorted(ROOT.glob("plugins/**/*.html"))
    problems = []
    for path in files:
        relative = str(path.relative_to(ROOT))
        text = path.read_text(encoding="utf-8")
        if RAW_HTML.search(text) and relative not in RAW_HTML_ALLOWED:
            problems.append(f"{relative}: turns escaping off")
        for expression in re.findall(r"\{\{(.*?)\}\}", text, flags=re.S):
            if GETTEXT_OF_VARIABLE.search(expression):
                problems.append(f"{relative}: _() of a variable in {{{{{expression}}}}}")
    assert not problems, "\n".join(problems)


def test_payloads_in_urls_come_back_inert(site: Site, chromium: Browser) -> None:
    """Reflected, not stored: every page route with a path parameter opened with a payload in
    its place, and list and search pages with payloads as query values; the answers (error
    pages included) run nothing and none fails with a 5xx."""
    payloads = [p.text for p in ACTIVE]
    urls = []
    for number, path in enumerate(p for p in site.routes if "{" in p and not _is_api(p)):
        payload = quote(payloads[number % len(payloads)], safe="")
        urls.append(re.sub(r"{[^}]+}", payload, path, count=1).split("{")[0].rstrip("/"))
    for number, path in enumerate(p for p in site.routes if "{" not in p and not _is_api(p)):
        if path in NOT_VISITED or path.endswith(".csv"):
            continue
        payload = quote(payloads[number % len(payloads)], safe="")
        urls.append(f"{path}?q={payload}&sort={payload}&status={payload}&report={payload}")
    tab = Tab(chromium, site.base)
    problems: list[str] = []
    echoed = 0
    try:
        tab.sign_in(xss_seed.ADMIN, xss_seed.ADMIN_PASSWORD)
        for url in dict.fromkeys(urls):
            seen = tab.visit(url)
            if seen.found or seen.status is None or seen.status >= 500:
                problems.append(f"{url}: {seen.status} {seen.found}")
            echoed += tab.page.evaluate(SHOWS_PAYLOAD)
    finally:
        tab.close()
    assert not problems, "\n".join(problems)
    assert echoed >= 10, f"only {echoed} pages showed the payload they were given"
