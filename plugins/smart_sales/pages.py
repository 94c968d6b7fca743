"""HTML pages the module renders itself, mounted under ``/smart_sales/``."""

from __future__ import annotations

from typing import Any


def routers() -> list[Any]:
    """Every page router of the module."""
    from plugins.smart_sales import inbox_pages, performance_pages, rules_pages

    return [inbox_pages.router, rules_pages.router, performance_pages.router]
