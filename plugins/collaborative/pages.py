"""HTML pages the module renders itself, mounted under ``/collaborative/``."""

from __future__ import annotations

from typing import Any


def routers() -> list[Any]:
    """Every page router of the module."""
    from plugins.collaborative import (
        chatter_pages,
        feed_pages,
        handoff_pages,
        inbox_pages,
        partner_pages,
        team_pages,
    )

    return [
        chatter_pages.router,
        inbox_pages.router,
        feed_pages.router,
        handoff_pages.router,
        partner_pages.router,
        team_pages.router,
    ]
