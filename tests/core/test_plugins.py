"""Loading plugins through entry points: failures are isolated, reported and optionally fatal."""

import pytest

from core.plugins import PluginLoadError, PluginRegistry


@pytest.fixture
def load(plugin_site):
    def loader(*names, strict=False):
        return PluginRegistry.load(only=names, strict=strict)

    return loader


def test_good_plugin_loads_from_its_entry_point(load):
    registry = load("sample")
    info = registry.plugins["sample"]
    assert info.loaded and info.error is None
    assert info.distribution == "crm-test-plugins"
    assert registry.manifests()["sample"].version == "1.0.0"
    assert "api_routers" in registry.hooks_of("sample")


def test_broken_import_is_recorded_and_others_load(load):
    registry = load("broken_import", "sample")
    assert registry.plugins["sample"].loaded
    broken = registry.plugins["broken_import"]
    assert not broken.loaded
    assert "import failed" in broken.error and "some_missing_dependency" in broken.error


def test_a_submodule_hiding_a_hook_is_a_load_error_not_a_silent_gap(load):
    registry = load("shadowed", "sample")
    error = registry.plugins["shadowed"].error
    assert "models" in error and "specname" in error
    assert registry.plugins["sample"].loaded  # its models.py sits beside @hookimpl(specname=...)
    assert registry.call_for("sample", "models") is not None


def test_bad_manifest_is_recorded(load):
    registry = load("bad_manifest", "sample")
    assert "bad manifest" in registry.plugins["bad_manifest"].error
    assert "version" in registry.plugins["bad_manifest"].error
    assert registry.plugins["sample"].loaded
    assert not registry.pm.has_plugin("bad_manifest")


def test_cycle_and_future_core_are_problems_of_the_modules(load):
    registry = load("cycle_a", "cycle_b", "future_core")
    assert "cycle" in registry.plugins["cycle_a"].problems[0]
    assert "cycle_a -> cycle_b -> cycle_a" in registry.plugins["cycle_a"].problems[0]
    assert "supports core >=99" in registry.plugins["future_core"].problems[0]


def test_strict_mode_makes_failures_fatal(load):
    with pytest.raises(PluginLoadError, match="broken_import"):
        load("broken_import", strict=True)


def test_unknown_hook_is_a_load_error(plugin_site):
    from core import Manifest, hookimpl

    class Typo:
        @hookimpl
        def manifest(self):
            return Manifest(name="typo", version="1", summary="s")

        @hookimpl
        def custmer_created(self, crm, customer):
            pass

    registry = PluginRegistry.load(only=(), extra=[("typo", Typo())])
    assert "unknown hook 'custmer_created'" in registry.plugins["typo"].error


def test_published_hookspecs_can_be_implemented_by_dependents(plugin_site):
    from core import Manifest, hookimpl, hookspec

    class Specs:
        @hookspec
        def order_placed(self, crm, order):
            """An order was placed."""

    class Publisher:
        @hookimpl
        def manifest(self):
            return Manifest(name="publisher", version="1", summary="s")

        @hookimpl
        def hookspecs(self):
            return Specs

    seen = []

    class Listener:
        @hookimpl
        def manifest(self):
            return Manifest(name="listener", version="1", summary="s", depends=("publisher",))

        @hookimpl
        def order_placed(self, crm, order):
            seen.append(order)

    registry = PluginRegistry.load(
        only=(), extra=[("publisher", Publisher()), ("listener", Listener())]
    )
    assert registry.plugins["listener"].loaded
    results = registry.collect(
        "order_placed", ["core", "publisher", "listener"], crm=None, order=42
    )
    assert seen == [42] and results[0].plugin == "listener"


def test_one_raising_implementation_does_not_stop_the_others(load):
    registry = load("noisy", "sample")
    results = registry.collect("checklist_items", ["core", "noisy", "sample"], crm=None)
    by_plugin = {r.plugin: r for r in results}
    assert isinstance(by_plugin["noisy"].error, RuntimeError)
    assert by_plugin["sample"].error is None and by_plugin["sample"].value
    assert by_plugin["core"].error is None
