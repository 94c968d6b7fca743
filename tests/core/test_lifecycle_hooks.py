"""The lifecycle hooks a third-party module may implement reach it: modules enabled and
disabled, customers deleted, demo data, and the module's own translations in the web UI."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core import modules, users
from core.bootstrap import initialise
from core.customers import demo_data, service
from core.web.app import create_app
from tests.web.conftest import PASSWORD, Browser


@pytest.fixture
def watched(make_crm):
    """A CRM where the ``watcher`` module is enabled, and what it saw since."""
    from crm_testplugins import watcher

    crm = make_crm(load_plugins="watcher,sample")
    initialise(crm, "admin@example.com", "Admin-pass-123")
    watcher.SEEN.clear()
    modules.enable(crm, ["watcher"])
    crm.refresh()
    yield crm, watcher.SEEN
    watcher.SEEN.clear()


def test_modules_enabled_and_disabled_are_announced(watched):
    crm, seen = watched
    modules.enable(crm, ["sample"])
    modules.disable(crm, "sample")
    assert seen == [
        ("module_enabled", "watcher"),
        ("module_enabled", "sample"),
        ("module_disabled", "sample"),
    ]


def test_a_deleted_customer_is_announced_after_the_commit(watched):
    crm, seen = watched
    with crm.db.write() as session:
        customer = service.create(session, crm, {"display_name": "Lê Văn Tám"})
    with crm.db.write() as session:
        service.delete(session, crm, session.get(type(customer), customer.id))
        assert ("customer_deleted", "Lê Văn Tám") not in seen  # not before the commit
    assert seen[-1] == ("customer_deleted", "Lê Văn Tám")


def test_each_enabled_module_loads_its_demo_data(watched):
    crm, _ = watched
    assert demo_data.load_modules(crm, seed=7) == [("watcher", "watcher demo data, seed 7")]


def test_a_module_ships_its_own_translations(watched):
    crm, _ = watched
    with crm.db.write() as session:
        users.create_user(session, "lan@example.com", "Lan", PASSWORD, ["manager"], language="vi")
        users.create_user(session, "tom@example.com", "Tom", PASSWORD, ["manager"])
    app = create_app(crm)
    vietnamese = Browser(TestClient(app, base_url="http://testserver"))
    vietnamese.login("lan@example.com")
    assert "Tháp canh" in vietnamese.get("/").text
    english = Browser(TestClient(app, base_url="http://testserver"))
    english.login("tom@example.com")
    page = english.get("/").text
    assert "Watch tower" in page and "Tháp canh" not in page
