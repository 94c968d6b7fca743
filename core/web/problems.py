"""HTTP answers for the domain errors of ``core.errors``, the same shape in every module's API.

- ``Invalid`` is 422 with FastAPI's own shape, one entry per field:
  ``{"detail": [{"loc": [where, *field.split(".")], "msg": ..., "type": "value_error"}]}``;
- ``Conflict`` is 409 with the message as ``detail``;
- ``StaleVersion`` (or SQLAlchemy's ``StaleDataError``) is 409 with ``detail`` and the record as
  committed now in ``current``, so that the client can show it and try again.

``guarded`` runs a change and gives these answers; a route returns what it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm.exc import StaleDataError

from core.errors import Conflict, Invalid, StaleVersion

T = TypeVar("T")


def invalid(errors: dict[str, str], where: str = "body") -> HTTPException:
    """422 naming each bad field (a dotted field gives a nested ``loc``) in ``where``."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [
            {"loc": [where, *name.split(".")], "msg": msg, "type": "value_error"}
            for name, msg in errors.items()
        ],
    )


def conflict(message: str) -> HTTPException:
    """409 with ``message`` as the detail."""
    return HTTPException(status.HTTP_409_CONFLICT, message)


def stale(what: str, record_id: int, current: BaseModel) -> JSONResponse:
    """409 for a change made from an old version; ``current`` is the record as committed now."""
    return JSONResponse(
        {
            "detail": f"{what} {record_id} was changed by someone else; "
            "review the current values and try again",
            "current": current.model_dump(mode="json"),
        },
        status_code=status.HTTP_409_CONFLICT,
    )


def guarded(change: Callable[[], T], on_stale: Callable[[], JSONResponse]) -> T | JSONResponse:
    """Run ``change`` and return its result: ``Invalid`` raises 422, ``Conflict`` raises 409, and
    a stale version returns ``on_stale()`` (which should read the record apart from the failed
    transaction and answer with ``stale``)."""
    try:
        return change()
    except Invalid as exc:
        raise invalid(exc.errors) from None
    except Conflict as exc:
        raise conflict(str(exc)) from None
    except (StaleVersion, StaleDataError):
        return on_stale()
