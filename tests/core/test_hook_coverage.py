"""Every documented hook is called by some test of the suite.

``tests/conftest.py`` records each hook the plugin registry calls in this process and runs this
test after all the others, in a full run of the suite only (a partial run cannot know).
"""

from __future__ import annotations

import importlib

from core.hookref import SPEC_MODULES, hookspecs
from tests.conftest import EXERCISED_HOOKS


def test_every_documented_hook_is_exercised_by_the_suite():
    documented = {
        spec.__name__
        for module_name, _ in SPEC_MODULES
        for spec in hookspecs(importlib.import_module(module_name))
    }
    untested = sorted(documented - EXERCISED_HOOKS)
    assert not untested, (
        f"no test calls an implementation of these hooks: {', '.join(untested)};"
        " add a test that makes the product call them"
    )
