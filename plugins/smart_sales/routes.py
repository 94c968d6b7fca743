"""The module's REST API, mounted under ``/api/smart_sales/``."""

from __future__ import annotations

from typing import Any


def routers() -> list[Any]:
    """Every router of the module's API."""
    from plugins.smart_sales import alerts_api, performance_api, rules_api

    return [alerts_api.router, rules_api.router, performance_api.router]
