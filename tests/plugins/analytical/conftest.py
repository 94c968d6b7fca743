"""Fixtures for the analytical module: a CRM with operational and analytical enabled."""

from __future__ import annotations

import pytest

from core import modules
from core.bootstrap import initialise


@pytest.fixture
def an_crm(make_crm):
    """A CRM with the operational and analytical modules enabled."""
    crm = make_crm(load_plugins="operational,analytical")
    initialise(crm, "admin@example.com", "Admin-pass-123")
    modules.enable(crm, ["analytical"])
    crm.refresh()
    return crm
