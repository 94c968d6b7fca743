"""Fixtures for the smart-selling module: a CRM with operational, analytical and smart_sales
enabled (and one with every module), the people of the collaborative tests, clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core import modules
from core.bootstrap import initialise
from core.web.app import create_app
from tests.plugins.collaborative.helpers import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, add_people
from tests.web.conftest import Browser

SMART = ["operational", "analytical", "smart_sales"]
EVERY = [*SMART, "collaborative"]


def _crm(make_crm, enable: list[str]) -> Any:
    crm = make_crm(load_plugins=",".join(enable))
    initialise(crm, ADMIN, ADMIN_PASSWORD)
    modules.enable(crm, enable)
    crm.refresh()
    crm.people = add_people(crm)
    return crm


@pytest.fixture
def ss_crm(make_crm):
    """Operational, analytical and smart_sales enabled, with the people of
    ``tests.plugins.collaborative.helpers.PEOPLE``; ``ss_crm.people`` maps e-mail to user id."""
    return _crm(make_crm, SMART)


@pytest.fixture
def every_crm(make_crm):
    """Every built-in module enabled (collaborative too, for notifications), same people."""
    return _crm(make_crm, EVERY)


@pytest.fixture
def api() -> Callable[..., Api]:
    """``api(crm, email)``: an API client of ``crm``'s app signed in as ``email``."""
    apps: dict[int, Any] = {}

    def sign_in(crm: Any, email: str) -> Api:
        app = apps.setdefault(id(crm), create_app(crm))
        return Api(app, email, ADMIN_PASSWORD if email == ADMIN else PASSWORD)

    return sign_in


@pytest.fixture
def browser() -> Callable[..., Browser]:
    """``browser(crm, email)``: a form-posting client of ``crm``'s app, signed in as ``email``."""
    apps: dict[int, Any] = {}

    def make(crm: Any, email: str | None = None) -> Browser:
        app = apps.setdefault(id(crm), create_app(crm))
        client = Browser(TestClient(app, base_url="http://testserver"))
        if email:
            password = ADMIN_PASSWORD if email == ADMIN else PASSWORD
            assert client.login(email, password).status_code == 303
        return client

    return make
