"""The FastAPI application: the core's API plus the routers of enabled modules."""

from __future__ import annotations

import logging
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match

from core import __version__, migrate
from core.runtime import Crm
from core.web import openapi
from core.web.security import SecurityMiddleware
from core.web.transactions import TransactionMiddleware
from core.webhooks import server_lifespan

log = logging.getLogger("crm.web")
STATIC = Path(__file__).parent / "static"
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CRM API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/core/vendor/swagger-ui/swagger-ui.css"></head>
<body data-openapi-url="/openapi.json"><div id="swagger-ui"></div>
<script src="/static/core/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/core/docs.js"></script></body></html>
"""


def create_app(crm: Crm, check_schema: bool = True) -> FastAPI:
    """Build the app for ``crm``; refuses when the schema does not match the code."""
    enabled = crm.enabled_modules()
    if check_schema:
        migrate.require_current(crm, enabled)
    docs = crm.settings.public_api_docs
    app = FastAPI(
        title="CRM",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        # the background webhook deliverer runs while the server does (webhooks_in_server)
        lifespan=server_lifespan(crm),
        dependencies=[Depends(_query_values_once)],
    )
    app.state.crm = crm
    app.state.plugin_errors = {}
    # inside the security middleware: an unsafe request is answered once committed
    app.add_middleware(TransactionMiddleware)
    app.add_middleware(SecurityMiddleware)

    # Public on purpose: stylesheets and scripts of the UI, no data.
    app.mount("/static/core", StaticFiles(directory=STATIC), name="static-core")
    if docs:
        from core.web.access import public

        @app.get("/docs", include_in_schema=False, openapi_extra=public("the API's description"))
        def api_docs() -> HTMLResponse:
            """Public unless CRM_PUBLIC_API_DOCS=false: the API's description, no data."""
            return HTMLResponse(DOCS_PAGE)

    from core.customers.api import router as customers_router
    from core.web.api import router

    app.include_router(router)
    app.include_router(customers_router)
    for result in crm.collect("api_routers", crm=crm):
        if result.plugin == "core":
            continue
        if result.error is not None:
            app.state.plugin_errors[result.plugin] = repr(result.error)
            continue
        for plugin_router in result.value or ():
            app.include_router(plugin_router, prefix=f"/api/{result.plugin}", tags=[result.plugin])
    from core.web import ui

    ui.install(app, crm)
    openapi.install(app)
    app.add_exception_handler(405, _method_not_allowed)
    return app


async def _query_values_once(request: Request) -> None:
    """Refuse a query parameter that the route takes once but the request repeats (422 naming
    it), rather than silently reading one of its values (HTTP parameter pollution)."""
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = {name for name in names if names.count(name) > 1}
    route = request.scope.get("route")
    if repeated and route is not None and (once := repeated & _single_query_params(route)):
        raise RequestValidationError(
            [
                {"loc": ("query", name), "msg": f"give {name} once", "type": "value_error"}
                for name in sorted(once)
            ]
        )


def _single_query_params(route: Any) -> set[str]:
    """The query parameters of ``route`` (and of its dependencies) that take one value."""
    names: set[str] = set()
    pending = [route.dependant] if hasattr(route, "dependant") else []
    while pending:
        dependant = pending.pop()
        pending.extend(dependant.dependencies)
        names.update(
            field.alias
            for field in dependant.query_params
            if not _takes_many(field.field_info.annotation)
        )
    return names


def _takes_many(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, UnionType):
        return any(_takes_many(arg) for arg in get_args(annotation))
    return (get_origin(annotation) or annotation) in (list, tuple, set, frozenset)


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    """405 whose ``Allow`` lists every method of the path, not only those of the first route
    matching it (Starlette's answer, when a path's methods are served by several routes)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]
    return JSONResponse(
        {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": ", ".join(allowed)}
    )


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` and ``crm serve``."""
    from core import modules

    crm = Crm.from_env()
    for line in modules.repair(crm):
        log.warning("repaired interrupted module operation: %s", line)
    return create_app(crm)
