"""The FastAPI application: the core's API plus the routers of enabled modules."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from core import __version__, migrate
from core.runtime import Crm
from core.web.security import SecurityMiddleware

log = logging.getLogger("crm.web")


def create_app(crm: Crm, check_schema: bool = True) -> FastAPI:
    """Build the app for ``crm``; refuses when the schema does not match the code."""
    enabled = crm.enabled_modules()
    if check_schema:
        migrate.require_current(crm, enabled)
    docs = crm.settings.public_api_docs
    app = FastAPI(
        title="CRM",
        version=__version__,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.crm = crm
    app.state.plugin_errors = {}
    app.add_middleware(SecurityMiddleware)

    from core.web.api import router

    app.include_router(router)
    for result in crm.collect("api_routers", crm=crm):
        if result.plugin == "core":
            continue
        if result.error is not None:
            app.state.plugin_errors[result.plugin] = repr(result.error)
            continue
        for plugin_router in result.value or ():
            app.include_router(plugin_router, prefix=f"/api/{result.plugin}", tags=[result.plugin])
    return app


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` and ``crm serve``."""
    from core import modules

    crm = Crm.from_env()
    for line in modules.repair(crm):
        log.warning("repaired interrupted module operation: %s", line)
    return create_app(crm)
