"""What the rules part adds to the generated UI: the "Sales rules" menu entry.

Rules and runs have their own page (``rules_pages``: plain-words rules, mute buttons, mining
form, run history), which says more than a generated list would, so no resource is declared.
"""

from __future__ import annotations

from typing import Any

from core.ui import N_, MenuItem


def resources() -> list[Any]:
    """None: ``/smart_sales/rules`` shows rules and runs."""
    return []


def menu() -> list[MenuItem]:
    """The "Sales rules" entry, for those who may read rules."""
    return [MenuItem(N_("Sales rules"), "/smart_sales/rules", "smart_sales.rule:read", order=72)]


def slots() -> list[Any]:
    """None."""
    return []


def widgets() -> list[Any]:
    """None."""
    return []
