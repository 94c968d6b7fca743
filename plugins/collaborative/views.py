"""What the module adds to the generated staff UI, gathered from the modules of each feature.

Each ``*_views`` module may define ``resources()``, ``slots(crm)`` and ``menu()``.
"""

from __future__ import annotations

import importlib
from typing import Any

_PARTS = (
    "chatter_views",
    "inbox_views",
    "team_views",
    "handoff_views",
    "partner_views",
    "feed_views",
)


def _parts() -> list[Any]:
    return [importlib.import_module(f"plugins.collaborative.{name}") for name in _PARTS]


def resources() -> list[Any]:
    """Resources and their list, form and detail views."""
    return [item for part in _parts() if hasattr(part, "resources") for item in part.resources()]


def slots(crm: Any) -> list[Any]:
    """Panels of record pages."""
    return [item for part in _parts() if hasattr(part, "slots") for item in part.slots(crm)]


def menu() -> list[Any]:
    """Navigation entries."""
    return [item for part in _parts() if hasattr(part, "menu") for item in part.menu()]
