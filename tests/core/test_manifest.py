"""Manifest validation and the module dependency graph."""

import pytest

from core.errors import ManifestError
from core.manifest import Manifest, dependency_closure, dependents_of


def m(name, *depends, **kw):
    return Manifest(name=name, version="1.0", summary="s", depends=depends, **kw)


def test_closure_puts_dependencies_first():
    graph = {"a": m("a"), "b": m("b", "a"), "c": m("c", "b", "a")}
    assert dependency_closure(graph, ["c"]) == ["a", "b", "c"]


def test_cycle_names_the_modules():
    graph = {"a": m("a", "b"), "b": m("b", "c"), "c": m("c", "a")}
    with pytest.raises(ManifestError, match="cycle between modules: a -> b -> c -> a"):
        dependency_closure(graph, ["a"])


def test_missing_dependency_names_both_modules():
    with pytest.raises(ManifestError, match="'a' depends on 'zz', which is not installed"):
        dependency_closure({"a": m("a", "zz")}, ["a"])


def test_unknown_module():
    with pytest.raises(ManifestError, match="unknown module 'nope'"):
        dependency_closure({}, ["nope"])


def test_dependents_are_transitive():
    graph = {"a": m("a"), "b": m("b", "a"), "c": m("c", "b"), "d": m("d")}
    assert dependents_of(graph, "a") == ["b", "c"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad-Name"}, "name must be"),
        ({"version": "one"}, "not a valid version"),
        ({"summary": "  "}, "summary is empty"),
        ({"category": "misc"}, "category"),
        ({"core": "~~1"}, "not a version specifier"),
        ({"depends": ("xy",), "name": "xy"}, "depends on itself"),
    ],
)
def test_invalid_manifest_fields(kwargs, message):
    data = {"name": "good", "version": "1.0", "summary": "s", **kwargs}
    with pytest.raises(ManifestError, match=message):
        Manifest(**data).validate()


def test_dict_manifest_with_unknown_or_missing_fields():
    with pytest.raises(ManifestError, match="unknown manifest field"):
        Manifest.from_value({"name": "a", "version": "1", "summary": "s", "colour": "red"})
    with pytest.raises(ManifestError, match="lacks field"):
        Manifest.from_value({"name": "a"})


def test_core_version_support():
    assert m("a", core=">=0.1,<1").supports_core("0.1.0")
    assert not m("a", core=">=99").supports_core("0.1.0")


def test_a_name_must_leave_room_for_its_revision_ids():
    m("a" * 27).validate()
    with pytest.raises(ManifestError, match="name must be 2-27 lower-case letters"):
        m("a" * 28).validate()
