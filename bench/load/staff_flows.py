"""The staff flows the load test drives, and how it reads forms, shared by the locustfile,
the runner and the tests.

Every request the locustfile sends is named ``"<flow> | <detail>"`` (or just ``"<flow>"``), so
the runner can add up requests and failures per flow from locust's statistics. This module
imports nothing from locust or gevent: the runner and the tests read it too.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

#: Separates the flow from the detail in a request name.
SEPARATOR = " | "

#: Every flow, with what one run of it sends.
FLOWS: dict[str, str] = {
    "sign in": "login form, then POST /login (Argon2 check, new session)",
    "sign out": "POST /logout, then sign in again",
    "navigation badges": "the unread counts every full page fetches after loading",
    "dashboard": "GET / and its widgets (each loaded by htmx)",
    "customer list": "GET /ui/customer, sometimes sorted by name or the next page",
    "customer search": "GET /ui/customer?q=<unaccented Vietnamese name prefix>",
    "customer 360": "GET /ui/customer/{id} and its slots (each loaded by htmx)",
    "timeline": "the customer's timelines, filtered by channel",
    "customer create": "the new customer form, then POST it",
    "customer edit": "the edit form of a customer the user created, then POST it with its version",
    "pipeline kanban": "GET /ui/opportunity/kanban",
    "pipeline move": "move a deal the user created to the next stage (with its version)",
    "log interaction": "the interaction form, then POST a call",
    "note": "POST a note on a customer's chatter",
    "tickets": "GET /ui/ticket and one ticket",
    "ticket create": "the new ticket form, then POST it",
    "ticket update": "edit a ticket the user created (status, with its version)",
    "orders": "GET /ui/order and one order",
    "analytics rfm": "GET /analytical/rfm",
    "analytics kpi": "GET /analytical/kpi",
    "smart-sales inbox": "GET /smart_sales/inbox",
    "collaborative inbox": "GET /collaborative/inbox",
    "collaborative feed": "GET /collaborative/feed, then its poll for new items",
    "api customers list": "GET /api/customers, then the next page",
    "api customers search": "GET /api/customers?q=<unaccented prefix>",
    "api customer read": "GET /api/customers/{id}",
    "api orders list": "GET /api/operational/orders",
    "api timeline": "GET /api/operational/customers/{id}/timeline",
}


def flow_of(name: str) -> str:
    """The flow a request name belongs to."""
    return name.split(SEPARATOR, 1)[0]


def label(flow: str, detail: str | None = None) -> str:
    """The request name of ``detail`` within ``flow``."""
    if flow not in FLOWS:
        raise KeyError(f"unknown flow {flow!r}")
    return flow if detail is None else f"{flow}{SEPARATOR}{detail}"


# --- HTML forms ----------------------------------------------------------------------------


class _Forms(HTMLParser):
    """The forms of a page: action and the values a browser would submit."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}})
        if not self.forms or "disabled" in a:
            return
        fields = self.forms[-1]["fields"]
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file") or (
                kind in ("checkbox", "radio") and "checked" not in a
            ):
                return
            fields[a["name"]] = a.get("value", "")
        elif tag == "select" and a.get("name"):
            self._select, self._options = a["name"], []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            fields[self._textarea] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None and self.forms:
            chosen = [v for v, selected in self._options if selected] or [
                v for v, _ in self._options[:1]
            ]
            if chosen:
                self.forms[-1]["fields"][self._select] = chosen[0]
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self.forms:
            fields = self.forms[-1]["fields"]
            # browsers drop the newline that may follow <textarea>
            fields[self._textarea] = fields[self._textarea].removeprefix("\n")
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and self.forms:
            self.forms[-1]["fields"][self._textarea] += data


def form_values(html: str, action_suffix: str) -> dict[str, str]:
    """The values of the form whose action ends with ``action_suffix``, as a browser sends them."""
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        if form["action"].endswith(action_suffix):
            return dict(form["fields"])
    raise LookupError(f"no form posting to …{action_suffix}")
