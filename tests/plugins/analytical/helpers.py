"""Plain helpers shared by the analytical tests: users in teams and bare customer rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from core import users
from core.customers.models import Customer

PASSWORD = "Password-123!"


def add_people(
    crm: Any,
    teams: dict[str, str],
    people: Iterable[tuple[str, str | None, list[str]]],
    *,
    title: bool = True,
) -> dict[str, int]:
    """Create ``teams`` (name -> label) and ``people`` (e-mail, team name or ``None``, roles)
    with ``PASSWORD``; the display name is the e-mail's local part (title-cased when ``title``).
    Returns the user ids by e-mail."""
    made = {}
    with crm.db.write() as session:
        made_teams = {name: users.add_team(session, name, label) for name, label in teams.items()}
        for email, team, roles in people:
            local = email.split("@")[0]
            user = users.create_user(
                session, email, local.title() if title else local, PASSWORD, roles
            )
            users.set_team(session, user, made_teams[team] if team is not None else None)
            made[email] = user.id
    return made


def add_customer(session: Session, name: str, owner: int | None = None, **values: Any) -> int:
    """Insert a bare person customer (search key: the lower-cased name) and return its id;
    ``values`` sets or overrides columns."""
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
