"""The hook reference in docs/hooks.md is the one generated from the hookspecs' docstrings, and
every hookspec has a docstring to generate it from."""

import importlib
from pathlib import Path

import pluggy
import pytest

from core import hookref

DOCS = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"
SPECS = [
    spec
    for name, _ in hookref.SPEC_MODULES
    for spec in hookref.hookspecs(importlib.import_module(name))
]


def test_the_reference_is_up_to_date():
    assert DOCS.read_text(encoding="utf-8") == hookref.reference(), (
        "docs/hooks.md is stale: run `make hooks-doc`"
    )


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.__name__)
def test_every_hookspec_says_what_it_receives_and_returns(spec):
    doc = (spec.__doc__ or "").strip()
    assert len(doc) > 40, f"{spec.__name__} needs a docstring (what, when, arguments, return)"
    assert f"#### `{spec.__name__}(" in hookref.reference()


def test_every_hook_of_the_bus_is_documented(make_crm):
    crm = make_crm(load_plugins="operational,analytical,collaborative,smart_sales")
    hook = crm.registry.pm.hook
    specified = {
        name
        for name in dir(hook)
        if isinstance(getattr(hook, name), pluggy.HookCaller) and getattr(hook, name).spec
    }
    assert {"manifest", "record_event", "order_placed", "mailing_segment"} <= specified
    assert specified == {spec.__name__ for spec in SPECS}
