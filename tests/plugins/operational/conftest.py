"""Fixtures for the operational module: a CRM with it enabled, users in two teams."""

from __future__ import annotations

import pytest

from core import modules, users
from core.bootstrap import initialise

PASSWORD = "Password-123!"


@pytest.fixture
def ops_crm(make_crm):
    """A CRM with ``operational`` enabled; sales users an (north), chi (south); dung (service)."""
    crm = make_crm(load_plugins="operational")
    initialise(crm, "admin@example.com", "Admin-pass-123")
    modules.enable(crm, ["operational"])
    crm.refresh()
    with crm.db.write() as session:
        north = users.add_team(session, "north", "Miền Bắc")
        south = users.add_team(session, "south", "Miền Nam")
        for email, team, roles in (
            ("an@example.com", north, ["sales"]),
            ("chi@example.com", south, ["sales"]),
            ("dung@example.com", None, ["service"]),
            ("mai@example.com", None, ["marketing"]),
        ):
            user = users.create_user(session, email, email.split("@")[0].title(), PASSWORD, roles)
            users.set_team(session, user, team)
    return crm
