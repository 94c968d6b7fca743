"""The plugin API's versioning: deprecated hooks warn, incompatible plugins are refused."""

from __future__ import annotations

import re
import types

import pytest
from fastapi.testclient import TestClient

from core import Manifest, PluginApiDeprecationWarning, hookimpl, hookspec, modules
from core.plugins import PluginRegistry
from core.web.app import create_app


@hookspec(warn_on_impl=PluginApiDeprecationWarning("use loyalty_changed; removed in API 2"))
def points_changed(crm, customer_id):
    """Deprecated."""


@hookspec(
    warn_on_impl_args={"session": PluginApiDeprecationWarning("the session argument goes in API 2")}
)
def loyalty_changed(crm, customer_id, session):
    """Current."""


#: Hooks a module publishes, one retired and one with a retired argument.
PublishedSpecs = types.SimpleNamespace(
    points_changed=points_changed, loyalty_changed=loyalty_changed
)


def _plugin(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(f"fake_{name}")

    @hookimpl(specname="manifest")
    def describe():
        return Manifest(name=name, version="1.0", summary=name)

    module.describe = describe
    for attr, function in hooks.items():
        setattr(module, attr, function)
    return module


def _publisher() -> types.ModuleType:
    return _plugin("publisher", publish=hookimpl(specname="hookspecs")(lambda: PublishedSpecs))


def test_implementing_a_deprecated_hook_warns_and_is_recorded_but_still_works():
    calls = []

    @hookimpl(specname="points_changed")
    def old(crm, customer_id):
        calls.append(("old", customer_id))

    @hookimpl(specname="loyalty_changed")
    def new(crm, customer_id, session):
        calls.append(("new", customer_id))

    user = _plugin("subscriber", old=old, new=new)
    with pytest.warns(PluginApiDeprecationWarning) as caught:
        registry = PluginRegistry.load(
            only=(), extra=[("publisher", _publisher()), ("subscriber", user)]
        )
    messages = {str(w.message) for w in caught}
    assert "use loyalty_changed; removed in API 2" in messages
    assert "the session argument goes in API 2" in messages
    info = registry.plugins["subscriber"]
    assert info.loaded
    assert info.deprecations == [
        "hook loyalty_changed, argument 'session': the session argument goes in API 2",
        "hook points_changed: use loyalty_changed; removed in API 2",
    ]
    assert registry.plugins["publisher"].deprecations == []
    registry.collect("points_changed", ["subscriber"], crm=None, customer_id=7)
    assert calls == [("old", 7)]


def test_a_current_implementation_has_no_deprecation():
    @hookimpl(specname="loyalty_changed")
    def new(crm, customer_id):
        return customer_id

    user = _plugin("subscriber", new=new)
    registry = PluginRegistry.load(
        only=(), extra=[("publisher", _publisher()), ("subscriber", user)]
    )
    assert registry.plugins["subscriber"].deprecations == []


def test_enable_refuses_a_plugin_made_for_another_core_with_a_clear_message(make_crm, cli, crm):
    result = cli("modules", "enable", "future_core", CRM_LOAD_PLUGINS="future_core")
    assert result.exit_code == 1
    assert (
        "module 'future_core' cannot be enabled: supports core >=99, this core is 0.1.0"
        " (plugin API 1.0): install a release of crm-test-plugins made for this core"
    ) in result.output
    other = make_crm(load_plugins="future_core")
    assert modules.states(other).get("future_core") is None


def test_plugins_list_shows_distribution_version_hooks_and_state(crm, cli):
    cli.run("modules", "enable", "sample", check=True)
    table = cli.run("plugins", "list")
    assert table.returncode == 0, table.stderr
    assert "sample" in table.stdout and "crm-test-plugins" in table.stdout
    assert "installed" in table.stdout and "migrations" in table.stdout
    alias = cli.run("plugin", "list", "--format", "json")
    assert alias.returncode == 0 and '"name": "sample"' in alias.stdout


def test_the_admin_modules_page_lists_plugins_with_their_errors(make_crm):
    from core.bootstrap import initialise

    crm = make_crm(load_plugins="sample,bad_manifest")
    initialise(crm, "admin@example.com", "Admin-pass-123")
    client = TestClient(create_app(crm), base_url="http://testserver")
    login = client.get("/login")
    assert login.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    client.post(
        "/login",
        data={"email": "admin@example.com", "password": "Admin-pass-123", "csrf_token": token},
        headers={"Origin": "http://testserver"},
    )
    page = client.get("/admin/modules")
    assert page.status_code == 200
    assert 'id="plugin-sample"' in page.text and 'id="plugin-bad_manifest"' in page.text
    assert "bad manifest" in page.text


def test_the_hook_reference_marks_deprecated_hooks_and_arguments():
    import sys

    from core.hookref import _entries

    text = "\n".join(_entries(sys.modules[__name__]))
    assert "#### `points_changed(crm, customer_id)` *(deprecated)*" in text
    assert "**Deprecated:** use loyalty_changed; removed in API 2" in text
    assert "**Deprecated argument `session`:** the session argument goes in API 2" in text


def test_the_checklist_names_enabled_modules_using_deprecated_hooks(crm_env):
    from core import checks
    from core.bootstrap import initialise
    from core.runtime import Crm
    from core.settings import load_settings

    @hookimpl(specname="points_changed")
    def old(crm, customer_id):
        """Still on the old hook."""

    registry = PluginRegistry.load(
        only=(), extra=[("publisher", _publisher()), ("subscriber", _plugin("subscriber", old=old))]
    )
    crm = Crm(load_settings(environ=crm_env), registry=registry)
    initialise(crm, "admin@example.com", "Admin-pass-123")
    assert {r.id: r for r in checks.run(crm)}["core.W015"].status == "ok"  # not enabled yet
    modules.enable(crm, ["subscriber", "publisher"])
    result = {r.id: r for r in checks.run(crm)}["core.W015"]
    assert result.status == "open"
    assert result.detail == (
        "subscriber: hook points_changed: use loyalty_changed; removed in API 2"
    )
    crm.close()
