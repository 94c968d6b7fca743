"""SQL pieces every analytics computation shares, giving the same answers on SQLite and
PostgreSQL: which orders count, the UTC calendar day of a timestamp, and month keys.

SQLite stores timestamps as naive UTC text; PostgreSQL converts them to UTC first, whatever the
session's time zone. A month key is ``year * 12 + month - 1``, so consecutive months have
consecutive keys.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, Integer, cast, extract, func, literal, literal_column

#: Orders in these states are left out of every analysis.
EXCLUDED_STATUSES = ("cancelled", "returned")
EPOCH = dt.date(1970, 1, 1)
_JULIAN_EPOCH = 2440587.5  # julianday('1970-01-01')


def _utc(dialect: str, column: Any) -> Any:
    """``column`` as UTC wall time on PostgreSQL (dates and SQLite text are left alone)."""
    if dialect == "sqlite" or isinstance(getattr(column, "type", None), Date):
        return column
    return func.timezone(literal_column("'UTC'"), column)


def day_number(dialect: str, column: Any) -> Any:
    """SQL for the UTC calendar day of a timestamp as whole days since 1970-01-01."""
    if dialect == "sqlite":
        return cast(func.julianday(func.date(column)) - _JULIAN_EPOCH, Integer)
    return cast(_utc(dialect, column), Date) - literal_column("DATE '1970-01-01'")


def epoch_day(day: dt.date) -> int:
    """Whole days from 1970-01-01 to ``day`` (the Python side of :func:`day_number`)."""
    return (day - EPOCH).days


def days_before(dialect: str, day: dt.date, column: Any) -> Any:
    """SQL for the whole UTC calendar days from the timestamp ``column`` to ``day``."""
    return literal(epoch_day(day)) - day_number(dialect, column)


def month_key(dialect: str, column: Any) -> Any:
    """SQL for the month key of a timestamp's UTC calendar day (or of a date).

    Constants are inlined (no bound parameters) so the expression may be grouped on.
    """
    if dialect == "sqlite":
        year = cast(func.strftime(literal_column("'%Y'"), column), Integer)
        month = cast(func.strftime(literal_column("'%m'"), column), Integer)
    else:
        utc = _utc(dialect, column)
        year = cast(extract("year", utc), Integer)
        month = cast(extract("month", utc), Integer)
    return year * literal_column("12") + month - literal_column("1")


def key_of(day: dt.date) -> int:
    """The month key of a date."""
    return day.year * 12 + day.month - 1


def month_label(key: int) -> str:
    """``YYYY-MM`` of a month key."""
    return f"{key // 12:04d}-{key % 12 + 1:02d}"


def month_start(key: int) -> dt.datetime:
    """The first instant (UTC) of a month key."""
    return dt.datetime(key // 12, key % 12 + 1, 1, tzinfo=dt.UTC)
