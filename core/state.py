"""Reading module states quickly, without the ORM, for startup paths such as ``crm --help``."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING
from urllib.parse import unquote

if TYPE_CHECKING:
    from core.runtime import Crm


def _sqlite_path(url: str) -> str | None:
    rest = url.split("://", 1)[1]
    if rest in ("", "/", "/:memory:"):
        return None
    path = rest[1:] if rest.startswith("/") else rest
    return unquote(path.split("?", 1)[0])


def read_states(crm: Crm) -> dict[str, str]:
    """Module name to state; empty when the database is not initialised yet."""
    url = crm.settings.database_url
    if url.startswith("sqlite") and crm._db is None:
        path = _sqlite_path(url)
        if path is None:
            return {}
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        except sqlite3.OperationalError:
            return {}
        try:
            return dict(conn.execute("SELECT name, state FROM core_module"))
        except sqlite3.OperationalError:
            return {}
        finally:
            conn.close()
    from sqlalchemy import inspect, text

    with crm.db.engine.connect() as conn:
        if not inspect(conn).has_table("core_module"):
            return {}
        return dict(conn.execute(text("SELECT name, state FROM core_module")).all())
