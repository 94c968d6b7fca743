"""Departments in the generated UI: the ``department`` resource (so that lists show team
names for team columns) and the menu entry of the departments page."""

from __future__ import annotations

from typing import Any

from core.i18n import N_
from core.ui import MenuItem, Resource


def resources() -> list[Any]:
    """Teams as the ``department`` resource, titled by their label."""
    from core.models import Team

    return [
        Resource(
            "department",
            Team,
            N_("Department"),
            N_("Departments"),
            title_field="label",
            permission_prefix="collaborative.team",
        )
    ]


def menu() -> list[MenuItem]:
    """The departments page."""
    return [
        MenuItem(N_("Departments"), "/collaborative/teams", "collaborative.team:read", order=64)
    ]
