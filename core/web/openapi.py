"""The API's OpenAPI document: how to authenticate, and every answer an operation can give.

FastAPI documents the success answer of a route and a 422 when it has parameters; a route adds
the answers only it gives (a 409 for a stale version, say). The answers every route shares
follow from its access declaration (:mod:`core.web.access`) and its path, and are added here
once for all, so that the document lists every status code a client can meet:

- 401 for every operation that is not public (no token or session, or one no longer valid);
- 403 for every operation that needs a permission, and for every state-changing one (a
  cross-site request made with the session cookie is refused, see :mod:`core.web.security`);
- 404 for every operation with a path parameter or declared ``scoped`` (no such record, or one
  the record rules hide);
- 400 for every operation with a body (a body that is not valid JSON);
- 422 for every operation with parameters or a body (FastAPI's validation answer).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from core.web.access import KEY

SAFE_METHODS = {"get", "head", "options"}
DESCRIPTION = (
    "Send an API token (`Authorization: Bearer ...`) or the session cookie. Every error answer"
    " has a `detail`; a 422 lists each refused parameter or field with its `loc`. Rules that"
    " hold for every operation: a query parameter that takes one value may be given once, and"
    " text never holds the NUL character (U+0000)."
)
#: The body of every error answer: ``detail`` is a message, or a list of field errors for 422.
PROBLEM = {
    "title": "Problem",
    "type": "object",
    "properties": {
        "detail": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
            ]
        }
    },
    "required": ["detail"],
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def install(app: FastAPI) -> None:
    """Serve :func:`document` as the app's OpenAPI document (built once, on first request)."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app``: FastAPI's, with security and the shared answers."""
    from fastapi.openapi.utils import get_openapi

    from core.web.deps import SECURITY_SCHEMES

    doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components = doc.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("ValidationError", _VALIDATION_ERROR)
    schemas["Problem"] = PROBLEM
    doc["security"] = [{"bearer": []}, {"session": []}]
    doc["info"]["description"] = DESCRIPTION
    _whole_numbers(doc)
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code, description in shared_answers(method, path, operation).items():
                responses.setdefault(code, {"description": description})
            for code, answer in responses.items():
                if code.startswith("4"):
                    answer.setdefault("content", {"application/json": {"schema": _PROBLEM_REF}})
    return doc


def shared_answers(method: str, path: str, operation: dict[str, Any]) -> dict[str, str]:
    """The error answers (status code: description) ``operation`` gives like every other."""
    answers: dict[str, str] = {}
    public = operation.get("security") == [] or bool((operation.get(KEY) or {}).get("public"))
    if not public:
        answers["401"] = "Not signed in: no API token or session, or one no longer valid"
    rule = operation.get(KEY) or {}
    needs_permission = bool(rule.get("permission") or rule.get("any_of")) or KEY not in operation
    if (not public and needs_permission) or method.lower() not in SAFE_METHODS:
        answers["403"] = (
            "Refused: the user lacks the permission, or a cross-site request used the session"
            " cookie"
        )
    if "{" in path or rule.get("scoped"):
        answers["404"] = "No such record, or one the user's record rules hide"
    if operation.get("requestBody"):
        answers["400"] = "The body cannot be read (it is not valid JSON, say)"
    if operation.get("parameters") or operation.get("requestBody"):
        answers["422"] = "A parameter or a field of the body is not valid; ``detail`` names it"
    return answers


_NUMERIC_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
# Pydantic's names for bounds it could not fold into the number's own schema (a number with a
# validator of its own, like ``core.web.inputs.Whole``), and JSON Schema's.
_PYDANTIC_BOUNDS = {
    "ge": "minimum",
    "le": "maximum",
    "gt": "exclusiveMinimum",
    "lt": "exclusiveMaximum",
}


def _whole_numbers(node: Any) -> None:
    """Write numbers' bounds as JSON Schema does: as ``minimum`` and the like (not pydantic's
    ``ge``), and as integers when whole (FastAPI's OpenAPI models make ``2147483647.0`` of the
    bounds of body fields, which tools then compare as floats)."""
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number"):
            for short, keyword in _PYDANTIC_BOUNDS.items():
                if short in node:
                    node.setdefault(keyword, node.pop(short))
        for key, value in node.items():
            if key in _NUMERIC_KEYWORDS and isinstance(value, float) and value.is_integer():
                node[key] = int(value)
            else:
                _whole_numbers(value)
    elif isinstance(node, list):
        for item in node:
            _whole_numbers(item)


# FastAPI adds this schema only when some route has parameters; kept here for the others.
_VALIDATION_ERROR = {
    "title": "ValidationError",
    "type": "object",
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
        "type": {"type": "string"},
    },
    "required": ["loc", "msg", "type"],
}
