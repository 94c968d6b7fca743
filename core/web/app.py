"""The FastAPI application: the core's API plus the routers of enabled modules."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
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
        dependencies=[Depends(_acceptable_values)],
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


#: The ``type`` of the 422 error for a NUL character (U+0000) in a parameter or field.
NUL_ERROR = "nul_character"


async def _acceptable_values(request: Request) -> None:
    """Refuse, naming each parameter or field (422), what no route takes: a query parameter
    the route reads once but the request repeats (which value counts would be a guess: HTTP
    parameter pollution), and the NUL character in any text (PostgreSQL cannot store it, and
    reached the database with it and failed with a 500)."""
    errors = [*_repeated_values(request), *_nul_characters(request)]
    if request.headers.get("content-type", "").startswith("application/json"):
        errors += _nul_in_json(await request.body())
    if errors:
        raise RequestValidationError(errors)


def _repeated_values(request: Request) -> list[dict[str, Any]]:
    counts = Counter(name for name, _ in request.query_params.multi_items())
    repeated = {name for name, count in counts.items() if count > 1}
    route = request.scope.get("route")
    if not repeated or route is None:
        return []
    once = repeated & _single_query_params(route)
    return [_error("query", [name], f"give {name} once") for name in sorted(once)]


def _nul_characters(request: Request) -> list[dict[str, Any]]:
    given = [
        *(("query", name, value) for name, value in request.query_params.multi_items()),
        *(("path", name, str(value)) for name, value in request.path_params.items()),
    ]
    return [
        _error(where, [name], f"{name} holds a NUL character", NUL_ERROR)
        for where, name, value in given
        if "\x00" in name or "\x00" in value
    ]


def _nul_in_json(body: bytes) -> list[dict[str, Any]]:
    if b"\\u0000" not in body:
        return []  # JSON writes NUL only as this escape
    try:
        data = json.loads(body)
    except ValueError:
        return []  # FastAPI answers 400
    return [
        _error(
            "body",
            path,
            f"{'.'.join(map(str, path)) or 'the body'} holds a NUL character",
            NUL_ERROR,
        )
        for path in _nul_paths(data, [])
    ]


def _nul_paths(value: Any, path: list[Any]) -> Iterator[list[Any]]:
    if isinstance(value, str):
        if "\x00" in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from ([[*path, key]] if "\x00" in key else _nul_paths(item, [*path, key]))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, [*path, index])


def _error(where: str, path: list[Any], message: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": (where, *path), "msg": message, "type": kind}


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
