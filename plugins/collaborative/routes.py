"""The module's REST API, mounted under ``/api/collaborative/``."""

from __future__ import annotations

from typing import Any


def routers() -> list[Any]:
    """Every router of the module's API."""
    from plugins.collaborative import (
        feed_api,
        handoffs_api,
        inbox_api,
        messages_api,
        partners_api,
        teams_api,
    )

    return [
        messages_api.router,
        inbox_api.router,
        teams_api.router,
        handoffs_api.router,
        partners_api.router,
        feed_api.router,
    ]
