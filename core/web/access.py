"""Who may call a route, declared next to the route itself.

Every route of the core and of every module states its access rule in its decorator::

    @router.get("/{customer_id}", openapi_extra=access("customer:read", scoped=True))

The declaration does not enforce anything (the route's dependencies and code do); it is the
promise the access matrix (``tests/security/test_access_matrix.py``) checks for every route
and every kind of user, so a new route without one, or one that lets more people in than it
says, fails the suite. API routes publish it in the OpenAPI schema as ``x-crm-access``.

- ``access(permission)``: a signed-in user holding ``permission`` gets through, anyone else
  signed in gets 403 and anonymous callers 401 (a login redirect on UI pages).
  ``permission=None`` lets in every signed-in user. ``any_of`` lists alternatives;
  ``all_of`` permissions are needed as well.
- ``scoped=True``: the record named in the path (or in the query string or body, such as a
  lookup by e-mail or the records a generic action is asked to act on) follows record rules
  (:mod:`core.records`); a user holding the permission who may not see that record gets 404,
  as if it did not exist.
- ``public(reason)``: no sign-in needed, and the reason why (a login form, a token link in an
  e-mail, a health probe).

A permission may name the UI resource of a generic page as ``{resource}``
(``"{resource}:read"`` on ``/ui/{name}``; the resource's permission prefix), or stand for the
permission of a generic action (``{action}``), dashboard widget (``{widget}``), record page
slot (``{slot}``) or the read permission of the record type in the path (``{record_type}``);
one of these without a permission of its own needs none.

Routes the framework adds itself take no decorator; :data:`FRAMEWORK` declares them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Mount

#: The OpenAPI extension (and ``openapi_extra`` key) holding a route's declaration.
KEY = "x-crm-access"


@dataclass(frozen=True)
class Access:
    """A route's declared access rule (see the module's docstring)."""

    permission: str | None = None
    any_of: tuple[str, ...] = ()
    scoped: bool = False
    public: str | None = None
    all_of: tuple[str, ...] = ()

    @property
    def permissions(self) -> tuple[str, ...]:
        """The permissions any one of which lets a signed-in user through (empty: none needed)."""
        return ((self.permission,) if self.permission else ()) + self.any_of

    def allows(self, held: frozenset[str]) -> bool:
        """Whether a signed-in user holding ``held`` gets past the permission check."""
        alternatives = self.permissions
        return (not alternatives or any(p in held for p in alternatives)) and all(
            p in held for p in self.all_of
        )


def access(
    permission: str | None = None,
    *,
    any_of: tuple[str, ...] = (),
    scoped: bool = False,
    all_of: tuple[str, ...] = (),
    **openapi_extra: Any,
) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that needs a signed-in user (see the module docstring).

    Other ``openapi_extra`` entries of the route may be passed as keyword arguments.
    """
    rule: dict[str, Any] = {"permission": permission, "any_of": list(any_of), "scoped": scoped}
    if all_of:
        rule["all_of"] = list(all_of)
    return {KEY: rule, **openapi_extra}


def public(reason: str, **openapi_extra: Any) -> dict[str, Any]:
    """The ``openapi_extra`` of a route anyone may call, with the reason why."""
    if not reason.strip():
        raise ValueError("a public route must say why it is public")
    return {"security": [], KEY: {"public": reason}, **openapi_extra}


#: Rules of the routes FastAPI adds itself, by their endpoint's name in ``fastapi.applications``.
FRAMEWORK = {
    "openapi": Access(
        public="the API's description, no data; CRM_PUBLIC_API_DOCS=false takes it away"
    ),
}


def declared(route: BaseRoute) -> Access | None:
    """The access rule ``route`` declares, or ``None`` when it declares none."""
    rule = (getattr(route, "openapi_extra", None) or {}).get(KEY)
    if rule is None:
        endpoint = getattr(route, "endpoint", None)
        if getattr(endpoint, "__module__", None) == "fastapi.applications":
            return FRAMEWORK.get(getattr(endpoint, "__name__", ""))
        return None
    return Access(
        permission=rule.get("permission"),
        any_of=tuple(rule.get("any_of") or ()),
        scoped=bool(rule.get("scoped")),
        public=rule.get("public"),
        all_of=tuple(rule.get("all_of") or ()),
    )


@dataclass(frozen=True)
class RouteEntry:
    """One method of one route of the app, with its full path."""

    method: str
    path: str
    route: BaseRoute

    @property
    def access(self) -> Access | None:
        """The route's declared access rule."""
        return declared(self.route)


def iter_routes(app: Any) -> Iterator[RouteEntry]:
    """Every method of every route of ``app`` (static file mounts left out), with full paths.

    Walks routers included into the app and into each other, whatever FastAPI keeps them as.
    """
    yield from _walk(app.router.routes, "")


def _walk(routes: list[BaseRoute], prefix: str) -> Iterator[RouteEntry]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI >= 0.130 keeps included routers as one node
            yield from _walk(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Mount):
            continue
        else:
            for method in sorted(getattr(route, "methods", None) or ()):
                if method != "HEAD":
                    yield RouteEntry(method, prefix + route.path, route)


def undeclared(app: Any) -> list[RouteEntry]:
    """The routes of ``app`` that declare no access rule (checklist item ``core.W017``)."""
    return [entry for entry in iter_routes(app) if entry.access is None]
