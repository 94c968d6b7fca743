"""Small helpers of the session, record-rule and mass-assignment tests: users, tokens, clients,
the cookies a response sets, the fields a form posts, and path templates filled with values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.web.conftest import Browser

PASSWORD = "Password-123!"
ADMIN = ("admin@example.com", "Admin-pass-123")
BASE_URL = "http://testserver"
ORIGIN = {"Origin": BASE_URL}


@dataclass(frozen=True)
class Cookie:
    """One ``Set-Cookie`` header: the cookie's name, value and attributes (lower-cased)."""

    name: str
    value: str
    attributes: dict[str, str]

    @property
    def flags(self) -> set[str]:
        """The attribute names (``httponly``, ``secure``, ``samesite``...)."""
        return set(self.attributes)


def cookies_set(response: Any) -> dict[str, Cookie]:
    """The cookies ``response`` sets, by name."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        first, *rest = header.split(";")
        name, _, value = first.partition("=")
        attributes = {}
        for part in rest:
            key, _, val = part.strip().partition("=")
            attributes[key.lower()] = val.lower()
        found[name.strip()] = Cookie(name.strip(), value.strip().strip('"'), attributes)
    return found


def add_user(
    crm: Any, email: str, roles: tuple[str, ...] = ("sales",), team: str | None = None
) -> int:
    """Create an active user with :data:`PASSWORD` (and the team, created when missing)."""
    from core import users
    from core.models import Team

    with crm.db.write() as session:
        user = users.create_user(session, email, email.split("@")[0].title(), PASSWORD, roles)
        if team is not None:
            row = session.scalar(select(Team).where(Team.name == team))
            users.set_team(session, user, row or users.add_team(session, team))
        return user.id


def token_for(crm: Any, email: str, name: str = "r-test") -> str:
    """A new API token of the user ``email``; its secret."""
    from core import auth, users

    with crm.db.write() as session:
        return auth.create_token(session, users.get_user(session, email), name).secret


def bearer(secret: str) -> dict[str, str]:
    """The header of an API call made with ``secret``."""
    return {"Authorization": f"Bearer {secret}"}


def browser(app: Any, email: str | None = None, password: str = PASSWORD, **kwargs: Any) -> Browser:
    """A form-posting client of ``app`` (signed in as ``email`` through the login form)."""
    client = Browser(TestClient(app, base_url=kwargs.pop("base_url", BASE_URL), **kwargs))
    if email is not None:
        response = client.login(email, password)
        assert response.status_code == 303, (email, response.status_code, response.text[:300])
    return client


def fill(path: str, values: dict[str, Any] | None = None, default: Any = 1) -> str:
    """``path`` with each ``{param}`` (or ``{param:conv}``) replaced by ``values[param]`` or
    ``default``."""
    values = values or {}

    def one(match: re.Match[str]) -> str:
        return str(values.get(match.group(1), default))

    return re.sub(r"\{([a-z_]+)(?::[a-z]+)?\}", one, path)


class _FormReader(HTMLParser):
    """The fields of the page's ``<form method="post">`` posting to ``action``, as a browser
    would send them (text inputs, checked checkboxes, textareas, selected options)."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.fields: dict[str, str] = {}
        self._in_form = self._done = False
        self._textarea: str | None = None
        self._select: str | None = None
        self._first_option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if self._done:
            return
        if tag == "form" and found.get("action") == self.action:
            self._in_form = True
        if not self._in_form or "disabled" in found:
            return
        name = found.get("name")
        if tag == "input" and name:
            kind = found.get("type", "text")
            if kind == "checkbox":
                if "checked" in found:
                    self.fields[name] = "on"
            elif kind not in ("submit", "button"):
                self.fields[name] = found.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = ""
        elif tag == "select" and name:
            self._select, self._first_option = name, None
        elif tag == "option" and self._select:
            value = found.get("value", "")
            if self._first_option is None:
                self._first_option = value
            if "selected" in found:
                self.fields[self._select] = value

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select" and self._select:
            self.fields.setdefault(self._select, self._first_option or "")
            self._select = None
        elif tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def form_fields(html: str, action: str) -> dict[str, str]:
    """What the page's form posting to ``action`` would post, untouched (its CSRF token left
    out)."""
    reader = _FormReader(action)
    reader.feed(html)
    return {k: v for k, v in reader.fields.items() if k != "csrf_token"}
