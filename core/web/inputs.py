"""What the API accepts, declared once: ids, versions, dates and times, currencies, bodies.

The OpenAPI document tells clients the exact shape of every input; these types make the server
hold to it, for the core's routes and every module's:

- ``Id`` and ``Version``: whole numbers from 1 to ``MAX_ID``. Ids and versions are PostgreSQL
  ``integer`` columns, so a larger number names no record (it used to reach the database and
  fail there with a 500).
- ``Amount``: money in minor units, 0 to ``MAX_AMOUNT``, the largest whole number a JSON number
  carries exactly in every client (JavaScript's ``Number.MAX_SAFE_INTEGER``).
- ``Whole``: any other whole number. Like every integer here it may be written ``2.0`` (JSON
  Schema counts it as an integer), never ``true`` or ``"2"``.
- ``Timestamp``, ``AwareTimestamp`` (with its time zone) and ``Day``: ISO 8601 text (or, from
  Python, ``datetime`` and ``date``). Pydantic alone also reads numbers and numeric text as Unix
  times: ``0`` or ``"0.5"`` became 1970-01-01.
- ``Currency``: an ISO 4217 code, in either case, kept upper-case; the document lists the codes.
- ``BODY``: the ``model_config`` of every request body model. Unknown fields are refused and
  every value must come in the JSON type the document gives it: pydantic's lax mode took
  ``true`` for the integer 1, ``"12"`` for 12 and ``1`` for true.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import (
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

#: The largest id or version: PostgreSQL's ``integer``.
MAX_ID = 2**31 - 1
#: The largest amount of money, in minor units.
MAX_AMOUNT = 2**53 - 1
#: The config of request body models: unknown fields refused, JSON types as documented.
BODY = ConfigDict(extra="forbid", strict=True)


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Bounds come before the validator: pydantic then documents them as minimum and maximum.
Whole = Annotated[int, BeforeValidator(_whole)]
Id = Annotated[int, Ge(1), Le(MAX_ID), BeforeValidator(_whole)]
Version = Annotated[int, Ge(1), Le(MAX_ID), BeforeValidator(_whole)]
Amount = Annotated[int, Ge(0), Le(MAX_AMOUNT), BeforeValidator(_whole)]

#: The characters ``str.strip`` removes, as a regex class that JSON Schema and pydantic both read.
SPACE = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
#: Control characters, as a regex class.
CONTROL = "\\x00-\\x1f\\x7f"
#: The ``pattern`` of text that is not blank once trimmed.
NOT_BLANK = f"[^{SPACE}]"


def trimmed(pattern: str, *, blank: bool = True) -> str:
    """The ``pattern`` of text that, once trimmed, matches ``pattern`` whole (or is empty,
    with ``blank``): what a server that trims before it checks accepts."""
    core = f"(?:{pattern})" + ("?" if blank else "")
    return f"^[{SPACE}]*{core}[{SPACE}]*$"


#: Trimmed text without control characters, and not blank.
CLEAN_TEXT = trimmed(f"[^{CONTROL}]*[^{CONTROL}{SPACE}][^{CONTROL}]*", blank=False)
#: Trimmed text without control characters, or blank.
CLEAN_TEXT_OR_BLANK = trimmed(f"[^{CONTROL}]*")

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_READERS = {kind: TypeAdapter(kind) for kind in (dt.datetime, dt.date)}


def _iso(kind: type, value: Any, example: str) -> Any:
    if isinstance(value, kind):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError(f"expected ISO 8601 text such as {example}")
    try:
        return _READERS[kind].validate_python(value)
    except ValidationError:
        raise ValueError(f"{value!r} is not a valid ISO 8601 value such as {example}") from None


Timestamp = Annotated[
    dt.datetime,
    BeforeValidator(functools.partial(_iso, dt.datetime, example="2026-04-10T09:30:00Z")),
]
#: A ``Timestamp`` that must name its time zone (``Z`` or an offset).
AwareTimestamp = Annotated[
    AwareDatetime,
    BeforeValidator(functools.partial(_iso, dt.datetime, example="2026-04-10T09:30:00Z")),
]
Day = Annotated[dt.date, BeforeValidator(functools.partial(_iso, dt.date, example="2026-04-10"))]


@functools.cache
def currency_codes() -> tuple[str, ...]:
    """Every ISO 4217 code the product knows (``core.money``)."""
    from babel.numbers import list_currencies

    return tuple(sorted(list_currencies()))


def _currency(value: Any) -> Any:
    if isinstance(value, str) and value.upper() in currency_codes():
        return value.upper()
    raise ValueError(f"unknown currency {value!r}; expected an ISO 4217 code such as VND or USD")


def _currency_schema(schema: dict[str, Any]) -> None:
    schema["enum"] = list(currency_codes())


Currency = Annotated[str, BeforeValidator(_currency), Field(json_schema_extra=_currency_schema)]
