"""A third-party plugin that raises is reported with its name and the rest keeps working.

The ``faulty`` test plugin raises in an event hook, a customer 360 slot, a dashboard widget,
its menu and its commands; with ``CRM_TEST_FAULTY_IMPORT=1`` it cannot even be imported.
"""

from __future__ import annotations

import json
import logging

from fastapi.testclient import TestClient

from core import modules, users
from core.bootstrap import initialise
from core.customers import service
from core.web.app import create_app
from tests.web.conftest import PASSWORD, Browser

BROKEN_IMPORT = {"CRM_TEST_FAULTY_IMPORT": "1"}


def _crm(make_crm):
    crm = make_crm(load_plugins="faulty,uiext")
    initialise(crm, "admin@example.com", "Admin-pass-123")
    modules.enable(crm, ["faulty", "uiext"])
    crm.refresh()
    return crm


def test_an_event_hook_that_raises_is_logged_with_its_module_and_the_change_stands(
    make_crm, caplog
):
    crm = _crm(make_crm)
    with caplog.at_level(logging.ERROR, logger="crm.plugins"), crm.db.write() as session:
        customer = service.create(session, crm, {"display_name": "Nguyễn Thị Hoà"})
    assert any(
        "plugin faulty: hook customer_created raised" in r.getMessage() for r in caplog.records
    )
    with crm.db.session() as session:
        assert service.read(session, customer.id)["display_name"] == "Nguyễn Thị Hoà"


def test_a_failing_slot_and_widget_show_an_error_box_naming_the_module(make_crm, caplog):
    crm = _crm(make_crm)
    with crm.db.write() as session:
        users.create_user(session, "an@example.com", "An", PASSWORD, ["manager"])
        customer = service.create(session, crm, {"display_name": "Trần Văn Bình"})
    browser = Browser(TestClient(create_app(crm), base_url="http://testserver"))
    browser.login("an@example.com")

    with caplog.at_level(logging.ERROR):
        slot = browser.get(f"/ui/slots/faulty.panel/{customer.id}")
        widget = browser.get("/ui/widgets/faulty.count")
    for box in (slot, widget):
        assert box.status_code == 200
        assert "This panel of the module faulty could not be loaded" in box.text
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("module faulty: slot faulty.panel failed") for m in logged)
    assert any(m.startswith("module faulty: widget faulty.count failed") for m in logged)

    # the rest of the page and the other module's panels work
    page = browser.get(f"/ui/customer/{customer.id}")
    assert page.status_code == 200 and "Trần Văn Bình" in page.text
    other = browser.get(f"/ui/slots/uiext.deals/{customer.id}")
    assert other.status_code == 200 and "could not be loaded" not in other.text
    dashboard = browser.get("/")
    assert dashboard.status_code == 200
    assert "faulty: menu_items failed" in dashboard.text


def test_crm_help_and_disable_survive_a_plugin_that_raises(crm, cli):
    env = {"CRM_LOAD_PLUGINS": "faulty,sample"}
    cli.run("modules", "enable", "faulty", "sample", check=True, **env)
    helped = cli.run("--help", **env)
    assert helped.returncode == 0, helped.stderr
    assert "init" in helped.stdout and "sample" in helped.stdout
    assert "module faulty could not add its commands" in helped.stderr
    disabled = cli.run("modules", "disable", "faulty", **env)
    assert disabled.returncode == 0, disabled.stderr
    assert "Disabled: faulty" in disabled.stdout


def test_a_plugin_that_no_longer_imports_is_listed_with_its_error_and_can_be_disabled(crm, cli):
    env = {"CRM_LOAD_PLUGINS": "faulty,sample"}
    cli.run("modules", "enable", "faulty", "sample", check=True, **env)
    broken = {**env, **BROKEN_IMPORT}

    helped = cli.run("--help", **broken)
    assert helped.returncode == 0, helped.stderr
    assert "sample" in helped.stdout

    listed = cli.run("plugins", "list", "--format", "json", **broken)
    assert listed.returncode == 0, listed.stderr
    entries = {e["name"]: e for e in json.loads(listed.stdout)}
    assert entries["faulty"]["loaded"] is False
    assert entries["faulty"]["distribution"] == "crm-test-plugins"
    assert entries["faulty"]["errors"] == [
        "import failed: ImportError: faulty: a broken release cannot be imported"
    ]
    assert entries["sample"]["loaded"] is True and entries["sample"]["enabled"] is True
    assert "manifest" in entries["sample"]["hooks"]

    disabled = cli.run("modules", "disable", "faulty", **broken)
    assert disabled.returncode == 0, disabled.stderr
    refused = cli.run("modules", "enable", "faulty", **broken)
    assert refused.returncode == 1
    assert "module 'faulty' cannot be enabled: import failed: ImportError" in refused.stderr
    states = json.loads(cli.run("modules", "list", "--format", "json", **broken).stdout)
    assert {m["name"]: m["state"] for m in states}["faulty"] == "disabled"
    assert cli.run("sample", "count", **broken).returncode == 0
