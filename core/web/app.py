"""The FastAPI application: the core's API plus the routers of enabled modules."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from core import __version__, migrate
from core.runtime import Crm
from core.web.security import SecurityMiddleware
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
    )
    app.state.crm = crm
    app.state.plugin_errors = {}
    app.add_middleware(SecurityMiddleware)

    # Public on purpose: stylesheets and scripts of the UI, no data.
    app.mount("/static/core", StaticFiles(directory=STATIC), name="static-core")
    if docs:

        @app.get("/docs", include_in_schema=False)
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
    _declare_security(app)
    return app


def _declare_security(app: FastAPI) -> None:
    """Every operation needs a token or a session cookie unless its route says ``PUBLIC``."""
    from fastapi.openapi.utils import get_openapi

    from core.web.deps import SECURITY_SCHEMES

    def schema() -> dict:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            document["security"] = [{"bearer": []}, {"session": []}]
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` and ``crm serve``."""
    from core import modules

    crm = Crm.from_env()
    for line in modules.repair(crm):
        log.warning("repaired interrupted module operation: %s", line)
    return create_app(crm)
