"""The staff web UI, generated from the views that the core and enabled modules register."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from core import i18n
from core.ui import registry as ui_registry
from core.web.ui import account, admin, admin_webhooks, home, pages
from core.web.ui.context import LoginRequired, UIContext, anonymous_language, login_redirect, page
from core.web.ui.templating import Translator, build_environment

if TYPE_CHECKING:
    from jinja2 import Environment

    from core.runtime import Crm

log = logging.getLogger("crm.ui")
#: Every router of the UI, in the order they are mounted (tests walk their routes).
ROUTERS = (account.router, home.router, admin.router, admin_webhooks.router, pages.router)


@dataclass
class UIState:
    """What the UI routes read from ``app.state.ui``."""

    registry: ui_registry.UIRegistry
    env: Environment
    translator: Translator
    catalogs: i18n.Catalogs


def _paths(crm: Crm, hook: str) -> list[tuple[str, Path]]:
    return [(module, Path(path)) for module, path in crm.contributions(hook) if module != "core"]


def install(app: FastAPI, crm: Crm) -> None:
    """Add the UI's routes, templates, translations and static files to ``app``."""
    catalogs = i18n.Catalogs([path for _, path in _paths(crm, "locale_dirs")])
    translator = Translator(catalogs)
    env = build_environment(_paths(crm, "template_dirs"), translator, crm.settings.timezone)
    app.state.ui = UIState(ui_registry.build(crm), env, translator, catalogs)
    for module, path in _paths(crm, "static_dirs"):
        # Public on purpose, like the core's: stylesheets, scripts and images, no data.
        app.mount(f"/static/{module}", StaticFiles(directory=path), name=f"static-{module}")
    for router in ROUTERS:
        app.include_router(router)
    for module, router in crm.contributions("web_routers", crm=crm):
        if module != "core":
            app.include_router(router, prefix=f"/{module}", include_in_schema=False)
    app.add_exception_handler(LoginRequired, login_redirect)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _error_page)  # type: ignore[arg-type]


async def _error_page(request: Request, exc: StarletteHTTPException) -> Any:
    """An HTML error page for people, JSON for API clients."""
    path = request.url.path
    wants_html = "text/html" in request.headers.get("accept", "") or request.headers.get(
        "hx-request"
    )
    if path.startswith(("/api", "/static", "/openapi")) or not wants_html:
        return await http_exception_handler(request, exc)
    if getattr(request.state, "principal", None) is None:
        i18n.set_language(anonymous_language(request))
    ctx = UIContext(request, getattr(request.state, "principal", None))
    return page(
        ctx, "error.html", status_code=exc.status_code, status=exc.status_code, detail=exc.detail
    )
