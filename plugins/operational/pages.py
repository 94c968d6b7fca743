"""HTML pages the module renders itself, under ``/operational/`` (``web_routers`` hook)."""

from fastapi import APIRouter, Depends

from core.web.ui.context import csrf_check


def routers() -> list[APIRouter]:
    """Every page router of the module."""
    from plugins.operational import agenda_pages, mailings_pages, reports_pages, tickets_pages

    return [mailings_pages.router, tickets_pages.router, reports_pages.router, agenda_pages.router]


def new_router() -> APIRouter:
    """A router for the module's pages, with CSRF checks on every form."""
    return APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)
