"""Locust load test of the main staff flows of the CRM, every module enabled.

Started by ``bench/load.py`` (headless, one process per user count), which prepares the
database, the accounts and the app servers, and passes them in environment variables:

- ``LOAD_ACCOUNTS``: JSON file with the password, the e-mails of each persona and API tokens;
- ``LOAD_HOSTS``: comma-separated base URLs of the app servers (each simulated user sticks to
  one, as behind a load balancer with sticky sessions);
- ``LOAD_THINK``: ``"min,max"`` seconds a user waits between two flows;
- ``LOAD_STATUS``: JSON file the HTTP status counts per request name are written to.

Personas (weights 5:2:2:1): salespeople, managers (who also read the analytics), service
agents (tickets) and an integration reading the REST API with a token. Each signed-in user
first runs every one of its flows once, in a random order, then picks flows by weight. Browser
behaviour is copied where it costs the server: fragments a page loads with htmx on ``load``
(dashboard widgets, customer 360 slots) are fetched six at a time as a browser would, and every
full page fetches the navigation badges. Redirects are not followed: a page that answers a
redirect to the sign-in form counts as a failure, not as a page.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from gevent.pool import Pool
from locust import HttpUser, between, events, task
from locust.clients import LocustHttpAdapter
from locust.exception import RescheduleTask
from staff_flows import form_values, label
from urllib3.util.retry import Retry

ACCOUNTS: dict[str, Any] = json.loads(Path(os.environ["LOAD_ACCOUNTS"]).read_text())
HOSTS = [h for h in os.environ.get("LOAD_HOSTS", "").split(",") if h]
THINK = [float(x) for x in os.environ.get("LOAD_THINK", "1,3").split(",")]
STATUS_FILE = os.environ.get("LOAD_STATUS")

#: Unaccented prefixes staff type to find Vietnamese customers (family name first).
SEARCHES = (
    "nguyen",
    "nguyen van",
    "nguyen thi",
    "tran",
    "tran thi",
    "le",
    "le van",
    "pham",
    "hoang",
    "huynh",
    "vu",
    "dang",
    "bui",
    "do",
    "ngo",
    "duong",
)
HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}
STAGES = ("new", "qualified", "proposal", "negotiation")
TICKET_STATUSES = ("open", "pending", "open")
CHANNELS = ("phone", "email", "zalo", "facebook", "website", "in_person")

_LOAD_FRAGMENT = re.compile(r'<[^>]*\bhx-get="([^"]+)"[^>]*\bhx-trigger="load"[^>]*>')
_BADGE = re.compile(r'data-badge="([^"]+)"')
_CUSTOMER = re.compile(r'href="/ui/customer/(\d+)"')
_ORDER = re.compile(r'href="/ui/order/(\d+)"')
_TICKET = re.compile(r'href="/ui/ticket/(\d+)"')
SAVED = r"/ui/[a-z_]+/(\d+)\?saved=1"
_NEXT_PAGE = re.compile(r'href="(/ui/customer\?[^"]*cursor=[^"]+)"')

# --- status counts per request name (read by the runner: 5xx, by flow) ----------------------

STATUS: dict[str, Counter[str]] = defaultdict(Counter)
#: GETs sent again after the server closed a kept-alive connection under them, per path.
RETRIED: Counter[str] = Counter()


@events.request.add_listener
def _count_status(name: str, response: Any, exception: Any, **_: Any) -> None:
    code = getattr(response, "status_code", None)
    STATUS[name][str(code) if code else "no response"] += 1


def _write_status(**_: Any) -> None:
    if STATUS_FILE:
        status = {"by_name": {k: dict(v) for k, v in STATUS.items()}, "retried": dict(RETRIED)}
        Path(STATUS_FILE).write_text(json.dumps(status))


class _BrowserRetry(Retry):
    """Send a GET again, once, when the connection it went out on was closed under it.

    The server closes connections idle for 5 s (uvicorn's keep-alive); one it closes just as the
    client reuses it fails with "connection reset". Browsers retry such a GET on a new
    connection, so does this user; each retry is counted (``RETRIED``) and reported.
    """

    def increment(self, method: str | None = None, url: str | None = None, *a: Any, **k: Any):
        """Count the retry, then let urllib3 decide."""
        RETRIED[(url or "?").split("?", 1)[0]] += 1
        return super().increment(method, url, *a, **k)


def browser_adapter() -> LocustHttpAdapter:
    """Locust's adapter, retrying a GET once on a dropped connection as browsers do."""
    retry = _BrowserRetry(
        total=1, connect=1, read=1, status=0, other=0, allowed_methods=frozenset({"GET"})
    )
    return LocustHttpAdapter(pool_manager=None, max_retries=retry)


events.test_stop.add_listener(_write_status)
events.quitting.add_listener(_write_status)


# --- the simulated users ---------------------------------------------------------------------

_host_turn = itertools.count()
_account_turn: dict[str, itertools.count] = defaultdict(itertools.count)


def _next_account(persona: str) -> str:
    emails = ACCOUNTS["personas"][persona]
    turn = next(_account_turn[persona])
    if turn >= len(emails):
        raise RuntimeError(f"more {persona} users than the {len(emails)} accounts prepared")
    return emails[turn]


class CrmUser(HttpUser):
    """A user of one of the app servers; runs its flows, every one once first."""

    abstract = True
    host = HOSTS[0] if HOSTS else None
    wait_time = between(*THINK)
    #: ``(weight, method name)`` of the persona's flows.
    flows: tuple[tuple[int, str], ...] = ()

    def __init__(self, environment: Any) -> None:
        if HOSTS:
            self.host = HOSTS[next(_host_turn) % len(HOSTS)]
        super().__init__(environment)
        self.client.mount("http://", browser_adapter())
        self.tour = [name for _, name in self.flows]
        random.shuffle(self.tour)

    @task
    def next_flow(self) -> None:
        """The next flow: the first tour of every flow, then one picked by weight."""
        if not getattr(self, "signed_in", True):
            self.sign_in()
            return
        if self.tour:
            name = self.tour.pop()
        else:
            name = random.choices([n for _, n in self.flows], [w for w, _ in self.flows])[0]
        getattr(self, name)()


class StaffUser(CrmUser):
    """A member of staff using the web UI: signed in with a session cookie, posting forms."""

    abstract = True
    persona = ""

    def on_start(self) -> None:
        """Take an account of the persona and sign in."""
        self.email = _next_account(self.persona)
        self.customers: list[int] = []
        self.mine: list[int] = []
        self.sign_in()

    # helpers

    def get_page(
        self, path: str, flow: str, detail: str | None = None, params: Any = None
    ) -> str | None:
        """A full page (200 expected), its htmx ``load`` fragments and the navigation badges."""
        with self.client.get(
            path,
            params=params,
            name=label(flow, detail),
            headers=HTML,
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                self.failed(response, path)
                return None
            response.success()
            html = response.text
        fragments = _LOAD_FRAGMENT.findall(html)
        Pool(6).map(lambda url: self._fragment(url, flow), fragments)
        for url in _BADGE.findall(html):
            self.get_ok(url, "navigation badges", url, headers=JSON)
        return html

    def failed(self, response: Any, path: str) -> None:
        """Record a failed GET; a redirect to the sign-in form means the session was lost, and
        the user signs in again before the next flow."""
        target = response.headers.get("location", "") if response.status_code else ""
        if target.startswith("/login"):
            self.signed_in = False
        cause = response.status_code or repr(response.error)
        response.failure(f"{path}: {cause} {target}".rstrip())

    def _fragment(self, url: str, flow: str) -> None:
        parts = url.strip("/").split("/")
        # /ui/slots/<slot>/<id> and /ui/widgets/<widget>: one name per slot or widget
        what = f"{parts[1][:-1]} {parts[2]}" if len(parts) > 2 else url
        self.get_ok(url, flow, what, headers={**HTML, "HX-Request": "true"})

    def get_ok(
        self,
        path: str,
        flow: str,
        detail: str | None = None,
        headers: Any = None,
        params: Any = None,
    ) -> str | None:
        """GET ``path`` expecting 200; its text, or ``None`` after recording a failure."""
        with self.client.get(
            path,
            params=params,
            name=label(flow, detail),
            headers=headers or HTML,
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                self.failed(response, path)
                return None
            response.success()
            return response.text

    def post_form(
        self, path: str, data: dict[str, Any], flow: str, detail: str, to: str = r"/.*"
    ) -> str | None:
        """POST a form as the pages do (CSRF token, our Origin), expecting a 303 redirect to a
        path matching ``to``; the path, or ``None`` after recording a failure."""
        form = {**data, "csrf_token": self.client.cookies.get("crm_csrf", "")}
        with self.client.post(
            path,
            data=form,
            name=label(flow, detail),
            headers={**HTML, "Origin": self.host},
            allow_redirects=False,
            catch_response=True,
        ) as response:
            target = response.headers.get("location", "")
            if response.status_code != 303 or not re.fullmatch(to, target):
                if target.startswith("/login"):
                    self.signed_in = False
                cause = response.status_code or repr(response.error)
                detail = f"{cause} to {target!r}: {response.text[:200]!r}"
                response.failure(f"POST {path}: {detail}")
                return None
            response.success()
            return target

    def known_customers(self) -> list[int]:
        """Customers the user has seen in a list (the list is fetched when none yet)."""
        if not self.customers:
            self.customer_list()
        return self.customers or self.mine

    def a_customer(self) -> int:
        """A customer the user may see (the flow is given up when the list failed)."""
        known = self.known_customers()
        if not known:
            raise RescheduleTask()
        return random.choice(known)

    def remember(self, html: str | None) -> None:
        """Keep the customers a list page shows."""
        ids = [int(i) for i in _CUSTOMER.findall(html or "")]
        if ids:
            self.customers = list(dict.fromkeys(ids))

    # flows

    def sign_in(self) -> None:
        """The sign-in form, then the password check and a new session."""
        self.client.cookies.clear()
        self.signed_in = False
        if self.get_ok("/login", "sign in", "form") is None:
            return
        fields = {"email": self.email, "password": ACCOUNTS["password"], "next": "/"}
        self.signed_in = self.post_form("/login", fields, "sign in", "POST /login", to="/") == "/"

    def sign_out(self) -> None:
        """Sign out (every session of the user ends), then back in."""
        self.post_form("/logout", {}, "sign out", "POST /logout", to="/login")
        self.sign_in()

    def dashboard(self) -> None:
        """The home page and its widgets."""
        self.get_page("/", "dashboard")

    def customer_list(self) -> None:
        """The customer list: newest first, by name, or the next page."""
        choice = random.random()
        params = {"sort": "display_name"} if choice < 0.3 else None
        html = self.get_page("/ui/customer", "customer list", params=params)
        self.remember(html)
        following = _NEXT_PAGE.findall(html or "")
        if following and choice > 0.7:
            next_page = following[-1].replace("&amp;", "&")
            self.remember(self.get_page(next_page, "customer list", "next page"))

    def customer_search(self) -> None:
        """Search customers by an unaccented name prefix."""
        html = self.get_page(
            "/ui/customer", "customer search", params={"q": random.choice(SEARCHES)}
        )
        self.remember(html)

    def customer_360(self) -> None:
        """A customer's 360 page with its slots."""
        self.get_page(f"/ui/customer/{self.a_customer()}", "customer 360")

    def timeline(self) -> None:
        """A customer's timelines, one filtered by channel."""
        customer = self.a_customer()
        self.get_ok(
            f"/ui/slots/operational.timeline/{customer}",
            "timeline",
            "operational, by channel",
            params={"channel": random.choice(CHANNELS)},
        )
        self.get_ok(f"/ui/slots/collaborative.timeline/{customer}", "timeline", "collaborative")

    def customer_create(self) -> None:
        """Fill in the new customer form and save it."""
        if self.get_page("/ui/customer/new", "customer create", "form") is None:
            return
        tag = uuid.uuid4().hex[:10]
        family, given = random.choice((("Nguyễn", "Tải"), ("Trần", "Thử"), ("Lê", "Tải Thử")))
        fields = {
            "kind": "person",
            "display_name": f"{family} {given} {tag}",
            "given_name": given,
            "family_name": family,
            "email": f"load-{tag}@example.com",
            "phone": "",
            "address": "1 Lê Lợi, Quận 1, TP. Hồ Chí Minh",
            "country": "VN",
            "language": "vi",
            "tags": "load",
            "source_channel": "load",
            "external_ref": f"LOAD-{tag}",
        }
        target = self.post_form("/ui/customer/new", fields, "customer create", "POST", to=SAVED)
        found = re.fullmatch(SAVED, target or "")
        if found:
            self.mine.append(int(found.group(1)))

    def customer_edit(self) -> None:
        """Edit a customer the user created, sending the version the form carries."""
        if not self.mine:
            self.customer_create()
            if not self.mine:
                return
        customer = random.choice(self.mine)
        html = self.get_page(f"/ui/customer/{customer}/edit", "customer edit", "form")
        if html is None:
            return
        fields = form_values(html, f"/ui/customer/{customer}/edit")
        fields["tags"] = random.choice(("load", "load, vip", "load, wholesale"))
        fields["address"] = f"{random.randint(1, 300)} Nguyễn Huệ, Quận 1, TP. Hồ Chí Minh"
        self.post_form(f"/ui/customer/{customer}/edit", fields, "customer edit", "POST", to=SAVED)

    def pipeline_kanban(self) -> None:
        """The pipeline board."""
        self.get_page("/ui/opportunity/kanban", "pipeline kanban")

    def pipeline_move(self) -> None:
        """Move a deal the user created one stage on (creating one first when none)."""
        if not hasattr(self, "deals"):
            self.deals: dict[int, int] = {}
        if not self.deals:
            fields = {
                "title": f"Đơn hàng thử {uuid.uuid4().hex[:8]}",
                "customer_id": str(self.a_customer()),
                "stage": "new",
                "expected_revenue_minor": str(random.randint(1, 50) * 1_000_000),
                "probability": "20",
                "expected_close": "",
                "lost_reason_id": "",
            }
            target = self.post_form(
                "/ui/opportunity/new", fields, "pipeline move", "create deal", to=SAVED
            )
            found = re.fullmatch(SAVED, target or "")
            if not found:
                return
            self.deals[int(found.group(1))] = 0
        deal = random.choice(list(self.deals))
        html = self.get_page(f"/ui/opportunity/{deal}/edit", "pipeline move", "deal form")
        if html is None:
            return
        version = form_values(html, f"/ui/opportunity/{deal}/edit")["version"]
        self.deals[deal] = (self.deals[deal] + 1) % len(STAGES)
        fields = {"group": STAGES[self.deals[deal]], "version": version}
        moved = self.post_form(
            f"/ui/opportunity/{deal}/move",
            fields,
            "pipeline move",
            "POST move",
            to="/ui/opportunity/kanban",
        )
        if moved:
            self.get_page("/ui/opportunity/kanban", "pipeline move", "board again")

    def log_interaction(self) -> None:
        """Log a call with a customer through the interaction form."""
        if self.get_page("/ui/interaction/new", "log interaction", "form") is None:
            return
        fields = {
            "customer_id": str(self.a_customer()),
            "kind": "call",
            "channel": random.choice(CHANNELS),
            "direction": "outbound",
            "subject": "Gọi lại tư vấn sản phẩm",
            "body": "Khách hẹn gọi lại tuần sau.",
            "occurred_at": "",
        }
        self.post_form("/ui/interaction/new", fields, "log interaction", "POST", to=SAVED)

    def note(self) -> None:
        """Post a note on a customer's chatter."""
        customer = self.a_customer()
        fields = {"body": "Ghi chú: khách quan tâm gói dịch vụ năm.", "kind": "note"}
        path = f"/collaborative/chatter/customer/{customer}/messages"
        self.post_form(path, fields, "note", "POST", to=rf"/ui/customer/{customer}#message-\d+")

    def tickets(self) -> None:
        """The ticket list and one ticket."""
        html = self.get_page("/ui/ticket", "tickets")
        ids = _TICKET.findall(html or "")
        if ids:
            self.get_page(f"/ui/ticket/{random.choice(ids)}", "tickets", "ticket")

    def orders(self) -> None:
        """The order list and one order."""
        html = self.get_page("/ui/order", "orders")
        ids = _ORDER.findall(html or "")
        if ids:
            self.get_page(f"/ui/order/{random.choice(ids)}", "orders", "order")

    def analytics_rfm(self) -> None:
        """The RFM analysis page."""
        self.get_page("/analytical/rfm", "analytics rfm")

    def analytics_kpi(self) -> None:
        """The KPI page."""
        self.get_page("/analytical/kpi", "analytics kpi")

    def smart_sales_inbox(self) -> None:
        """The sales alerts inbox."""
        self.get_page("/smart_sales/inbox", "smart-sales inbox")

    def collaborative_inbox(self) -> None:
        """The notifications inbox."""
        self.get_page("/collaborative/inbox", "collaborative inbox")

    def collaborative_feed(self) -> None:
        """The activity feed, then its poll for newer items."""
        html = self.get_page("/collaborative/feed", "collaborative feed")
        poll = re.search(r'hx-get="(/collaborative/feed/new\?[^"]+)"', html or "")
        if poll:
            url = poll.group(1).replace("&amp;", "&")
            self.get_ok(url, "collaborative feed", "poll", headers={**HTML, "HX-Request": "true"})


class Salesperson(StaffUser):
    """Sales: customers, pipeline, interactions, notes, alerts."""

    weight = 5
    persona = "sales"
    flows = (
        (3, "dashboard"),
        (4, "customer_list"),
        (6, "customer_search"),
        (6, "customer_360"),
        (2, "timeline"),
        (1, "customer_create"),
        (2, "customer_edit"),
        (3, "pipeline_kanban"),
        (1, "pipeline_move"),
        (3, "log_interaction"),
        (2, "note"),
        (1, "tickets"),
        (2, "orders"),
        (3, "smart_sales_inbox"),
        (2, "collaborative_inbox"),
        (2, "collaborative_feed"),
        (1, "sign_out"),
    )


class Manager(StaffUser):
    """A sales manager: dashboards, analytics, pipeline, the team's customers."""

    weight = 2
    persona = "manager"
    flows = (
        (3, "dashboard"),
        (3, "analytics_rfm"),
        (3, "analytics_kpi"),
        (3, "pipeline_kanban"),
        (2, "customer_360"),
        (2, "customer_search"),
        (1, "smart_sales_inbox"),
        (2, "collaborative_feed"),
        (2, "orders"),
        (1, "tickets"),
    )


class ServiceAgent(StaffUser):
    """Customer care: tickets, customers, interactions."""

    weight = 2
    persona = "service"
    flows = (
        (4, "tickets"),
        (2, "ticket_create"),
        (1, "ticket_update"),
        (3, "customer_search"),
        (2, "customer_360"),
        (2, "log_interaction"),
        (1, "collaborative_inbox"),
        (1, "dashboard"),
    )

    def ticket_create(self) -> None:
        """Open a ticket for a customer through the form."""
        if self.get_page("/ui/ticket/new", "ticket create", "form") is None:
            return
        fields = {
            "customer_id": str(self.a_customer()),
            "subject": "Sản phẩm giao thiếu phụ kiện",
            "description": "Khách báo thiếu dây sạc trong hộp.",
            "priority": random.choice(("low", "normal", "high")),
            "assignee_id": "",
        }
        target = self.post_form("/ui/ticket/new", fields, "ticket create", "POST", to=SAVED)
        found = re.fullmatch(SAVED, target or "")
        if found:
            self.mine.append(int(found.group(1)))

    def ticket_update(self) -> None:
        """Change the status of a ticket the agent opened, with the form's version."""
        if not self.mine:
            self.ticket_create()
            if not self.mine:
                return
        ticket = random.choice(self.mine)
        html = self.get_page(f"/ui/ticket/{ticket}/edit", "ticket update", "form")
        if html is None:
            return
        fields = form_values(html, f"/ui/ticket/{ticket}/edit")
        fields["status"] = random.choice(TICKET_STATUSES)
        self.post_form(f"/ui/ticket/{ticket}/edit", fields, "ticket update", "POST", to=SAVED)


class ApiClient(CrmUser):
    """An integration reading customers and orders through the REST API with a token."""

    weight = 1
    flows = (
        (3, "api_customers_list"),
        (3, "api_customers_search"),
        (4, "api_customer_read"),
        (2, "api_orders_list"),
        (1, "api_timeline"),
    )

    def on_start(self) -> None:
        """Take a token."""
        token = _next_account("api")
        self.headers = {**JSON, "Authorization": f"Bearer {token}"}
        self.customers: list[int] = []

    def api_get(self, path: str, flow: str, detail: str | None = None, **params: Any) -> Any:
        """GET ``path`` expecting 200 JSON; the decoded body or ``None``."""
        with self.client.get(
            path,
            params=params or None,
            name=label(flow, detail),
            headers=self.headers,
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                cause = response.status_code or repr(response.error)
                response.failure(f"{path}: {cause} {response.text[:200]!r}")
                return None
            response.success()
            return response.json()

    def _remember(self, body: Any) -> None:
        ids = [item["id"] for item in (body or {}).get("items", [])]
        if ids:
            self.customers = ids

    def a_customer(self) -> int:
        """A customer id seen in a list (the flow is given up when the list failed)."""
        if not self.customers:
            self._remember(self.api_get("/api/customers", "api customers list", limit=50))
        if not self.customers:
            raise RescheduleTask()
        return random.choice(self.customers)

    def api_customers_list(self) -> None:
        """A page of customers, then the next one."""
        body = self.api_get("/api/customers", "api customers list", limit=50)
        self._remember(body)
        if body and body.get("next_cursor"):
            cursor = body["next_cursor"]
            self.api_get("/api/customers", "api customers list", "next page", cursor=cursor)

    def api_customers_search(self) -> None:
        """Customers whose name starts with an unaccented prefix."""
        self._remember(
            self.api_get("/api/customers", "api customers search", q=random.choice(SEARCHES))
        )

    def api_customer_read(self) -> None:
        """One customer."""
        self.api_get(f"/api/customers/{self.a_customer()}", "api customer read")

    def api_orders_list(self) -> None:
        """A page of orders."""
        self.api_get("/api/operational/orders", "api orders list", limit=50)

    def api_timeline(self) -> None:
        """A customer's timeline."""
        self.api_get(f"/api/operational/customers/{self.a_customer()}/timeline", "api timeline")
