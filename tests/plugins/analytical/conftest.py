"""Fixtures for the analytical module: a CRM with operational and analytical enabled."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from core import modules
from core.bootstrap import initialise
from core.web.app import create_app
from tests.plugins.analytical.helpers import PASSWORD
from tests.web.conftest import Browser


@pytest.fixture
def an_crm(make_crm):
    """A CRM with the operational and analytical modules enabled."""
    crm = make_crm(load_plugins="operational,analytical")
    initialise(crm, "admin@example.com", "Admin-pass-123")
    modules.enable(crm, ["analytical"])
    crm.refresh()
    return crm


@pytest.fixture
def browser(an_crm) -> Callable[..., Browser]:
    """``browser(email, password)``: a client of ``an_crm``'s app, signed in when ``email`` is
    given (the sign-in must redirect)."""
    app = create_app(an_crm)

    def make(email: str | None = None, password: str = PASSWORD) -> Browser:
        client = Browser(TestClient(app, base_url="http://testserver"))
        if email:
            assert client.login(email, password).status_code == 303
        return client

    return make
