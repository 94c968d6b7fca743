"""Compare a database's schema with the models, one module's tables at a time."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def _table_of(diff: Any) -> str | None:
    if isinstance(diff, list):  # column modifications come grouped
        diff = diff[0]
    for item in diff[1:]:
        if isinstance(item, sa.Table):
            return item.name
        table = getattr(item, "table", None)
        if isinstance(table, sa.Table):
            return table.name
        if isinstance(item, str):
            return item
    return None


def module_diffs(engine: sa.Engine, prefix: str) -> list[Any]:
    """Differences between the database and the models for tables named ``<prefix>...``."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from core.db import Base

    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    return [d for d in diffs if (_table_of(d) or "").startswith(prefix)]
