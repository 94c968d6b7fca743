"""The inbox in the navigation, with its unread count as a badge."""

from __future__ import annotations

from core.i18n import N_
from core.ui.specs import MenuItem

COUNT_URL = "/api/collaborative/notifications/count"


def menu() -> list[MenuItem]:
    """The inbox entry; the page fetches ``COUNT_URL`` to show the unread count."""
    return [
        MenuItem(
            N_("Inbox"),
            "/collaborative/inbox",
            "collaborative.notification:read",
            order=5,
            badge=COUNT_URL,
        )
    ]
