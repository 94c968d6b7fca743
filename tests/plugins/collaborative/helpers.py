"""Plain helpers shared by the collaborative tests: people in departments, customers, clients."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert
from sqlalchemy.orm import Session

from core import users
from core.customers.models import Customer

PASSWORD = "Password-123!"
ADMIN = "admin@example.com"
ADMIN_PASSWORD = "Admin-pass-123"
ORIGIN = {"Origin": "http://testserver"}

#: Departments (core teams): name -> label.
TEAMS = {"north": "Kinh doanh miền Bắc", "south": "Kinh doanh miền Nam", "care": "Chăm sóc"}
#: e-mail, display name, primary team, roles.
PEOPLE = (
    ("an@example.com", "Nguyễn Văn An", "north", ["sales"]),
    ("binh@example.com", "Trần Thị Bình", "north", ["sales"]),
    ("chi@example.com", "Lê Minh Chi", "south", ["sales"]),
    ("dung@example.com", "Phạm Dũng", "care", ["service"]),
    ("mai@example.com", "Hoàng Mai", "north", ["manager"]),
    ("zahra@example.com", "زهرا احمدی", None, ["marketing"]),
)


def add_people(crm: Any) -> dict[str, int]:
    """Create ``TEAMS`` and ``PEOPLE`` (password ``PASSWORD``); user ids by e-mail (and
    ``team:<name>`` for team ids)."""
    made: dict[str, int] = {}
    with crm.db.write() as session:
        teams = {name: users.add_team(session, name, label) for name, label in TEAMS.items()}
        session.flush()
        for name, team in teams.items():
            made[f"team:{name}"] = team.id
        for email, name, team, roles in PEOPLE:
            user = users.create_user(session, email, name, PASSWORD, roles)
            users.set_team(session, user, teams[team] if team else None)
            session.flush()
            made[email] = user.id
    return made


def add_customer(session: Session, name: str, owner: int | None = None, **values: Any) -> int:
    """Insert a bare person customer and return its id; ``values`` sets or overrides columns."""
    now = dt.datetime.now(dt.UTC)
    row = {
        "kind": "person",
        "display_name": name,
        "search_key": name.lower(),
        "owner_id": owner,
        "archived": False,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    return session.execute(insert(Customer).values(**(row | values))).inserted_primary_key[0]


class Api:
    """A client signed in through ``POST /api/auth/login`` (session cookie, own origin)."""

    def __init__(self, app: Any, email: str, password: str = PASSWORD) -> None:
        self.client = TestClient(app)
        response = self.client.post(
            "/api/auth/login", json={"email": email, "password": password}, headers=ORIGIN
        )
        assert response.status_code == 200, response.text

    def __getattr__(self, method: str):
        call = getattr(self.client, method)
        return lambda url, **kw: call(url, headers={**ORIGIN, **kw.pop("headers", {})}, **kw)
