"""Fixtures for the web UI: a CRM with the third-party-style ``uiext`` plugin enabled, users in
two teams, and a browser-like client that signs in through the login form."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from core import modules, users
from core.bootstrap import initialise
from core.web.app import create_app

PASSWORD = "Password-123!"
ORIGIN = {"Origin": "http://testserver"}


class Browser:
    """A TestClient that behaves like a browser: signs in through the form, sends CSRF tokens."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def csrf(self) -> str:
        """The CSRF token the pages carry (getting one if the client has none yet)."""
        token = self.client.cookies.get("crm_csrf")
        if token is None:
            self.client.get("/login")
            token = self.client.cookies.get("crm_csrf")
        return token

    def login(self, email: str, password: str = PASSWORD):
        """Sign in through the login form."""
        return self.post("/login", {"email": email, "password": password, "next": "/"})

    def get(self, url: str, **kwargs):
        """GET as a browser asking for HTML."""
        kwargs.setdefault("headers", {"Accept": "text/html"})
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict | None = None, **kwargs):
        """POST a form with the CSRF token and our own origin, as the pages do."""
        form = {"csrf_token": self.csrf(), **(data or {})}
        headers = {**ORIGIN, "Accept": "text/html", **kwargs.pop("headers", {})}
        return self.client.post(url, data=form, headers=headers, follow_redirects=False, **kwargs)


@pytest.fixture
def ui_crm(make_crm):
    """A CRM with the ``uiext`` plugin enabled, users in teams north and south."""
    crm = make_crm(load_plugins="uiext")
    initialise(crm, "admin@example.com", "Admin-pass-123")
    modules.enable(crm, ["uiext"])
    crm.refresh()
    with crm.db.write() as session:
        north = users.add_team(session, "north", "Miền Bắc")
        south = users.add_team(session, "south", "Miền Nam")
        for email, team, roles in (
            ("an@example.com", north, ["sales"]),
            ("binh@example.com", north, ["sales"]),
            ("chi@example.com", south, ["sales"]),
            ("dung@example.com", None, ["manager"]),
        ):
            user = users.create_user(session, email, email.split("@")[0].title(), PASSWORD, roles)
            users.set_team(session, user, team)
    return crm


@pytest.fixture
def app(ui_crm):
    """The web app of ``ui_crm``."""
    return create_app(ui_crm)


@pytest.fixture
def browser(app):
    """A fresh, signed-out browser; call ``browser.login(email)``."""

    def make() -> Browser:
        return Browser(TestClient(app, base_url="http://testserver"))

    return make


def ids_on(html: str) -> list[int]:
    """The record ids of the rows of a list page."""
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)]
