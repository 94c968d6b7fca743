"""Backups and restores: SQLite's online backup API, ``pg_dump``/``psql`` for PostgreSQL.

Both are safe while the product runs: SQLite copies a consistent snapshot page by page;
``pg_dump`` reads one snapshot. A restore replaces the whole database in one transaction.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from core.db import utcnow
from core.errors import CrmError
from core.state import _sqlite_path

if TYPE_CHECKING:
    from core.runtime import Crm

LAST_BACKUP_KEY = "backup.last_at"


class BackupError(CrmError):
    """A backup or restore could not be made; nothing was changed."""


def _libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise BackupError(f"{tool} is not installed (Debian package postgresql-client)")
    return found


def backup(crm: Crm, target: Path) -> Path:
    """Write a backup of the whole database to ``target`` and record when it was made."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise BackupError(f"{target} already exists; choose another file")
    tmp = target.with_name(target.name + ".partial")
    try:
        if crm.settings.is_sqlite:
            source = sqlite3.connect(_sqlite_path(crm.settings.database_url) or ":memory:")
            dest = sqlite3.connect(tmp)
            try:
                source.backup(dest)
            finally:
                dest.close()
                source.close()
        else:
            run = subprocess.run(
                [
                    _require("pg_dump"),
                    "--format=custom",
                    "--no-owner",
                    f"--file={tmp}",
                    _libpq_url(crm.settings.database_url),
                ],
                capture_output=True,
                text=True,
            )
            if run.returncode != 0:
                raise BackupError(f"pg_dump failed: {run.stderr.strip()}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _record_backup(crm)
    return target


def restore(crm: Crm, source: Path) -> None:
    """Replace the database's content with the backup in ``source`` (all or nothing)."""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"{source} does not exist")
    if crm.settings.is_sqlite:
        _restore_sqlite(crm, source)
    else:
        _restore_postgres(crm, source)
    crm.refresh()


def _restore_sqlite(crm: Crm, source: Path) -> None:
    try:
        backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        ok = backup_db.execute("PRAGMA integrity_check").fetchone()[0]
        has_core = backup_db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='core_module'"
        ).fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source} is not an SQLite database: {exc}") from None
    if ok != "ok" or not has_core:
        backup_db.close()
        raise BackupError(f"{source} is not an intact CRM backup (integrity: {ok})")
    if crm._db is not None:
        crm.db.dispose()
    live = sqlite3.connect(_sqlite_path(crm.settings.database_url) or ":memory:", timeout=30)
    try:
        backup_db.backup(live)
    finally:
        live.close()
        backup_db.close()


def _restore_postgres(crm: Crm, source: Path) -> None:
    listing = subprocess.run(
        [_require("pg_restore"), "--list", str(source)], capture_output=True, text=True
    )
    if listing.returncode != 0 or "core_module" not in listing.stdout:
        raise BackupError(f"{source} is not a CRM backup made by pg_dump")
    script = subprocess.run(
        [_require("pg_restore"), "--no-owner", "--file=-", str(source)],
        capture_output=True,
        text=True,
    )
    if script.returncode != 0:
        raise BackupError(f"pg_restore failed: {script.stderr.strip()}")
    if crm._db is not None:
        crm.db.dispose()
    sql = "DROP SCHEMA public CASCADE;\nCREATE SCHEMA public;\n" + script.stdout
    run = subprocess.run(
        [
            _require("psql"),
            "--quiet",
            "--single-transaction",
            "-v",
            "ON_ERROR_STOP=1",
            "--no-psqlrc",
            "-d",
            _libpq_url(crm.settings.database_url),
        ],
        input=sql,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise BackupError(f"restore failed, database unchanged: {run.stderr.strip()}")


def automatic_backup(crm: Crm, reason: str) -> Path:
    """A backup in ``CRM_BACKUP_DIR`` named after ``reason`` and the time, before risky work."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    suffix = ".db" if crm.settings.is_sqlite else ".dump"
    return backup(crm, Path(crm.settings.backup_dir) / f"{stamp}-{reason}{suffix}")


def _record_backup(crm: Crm) -> None:
    from core.models import Setting

    with crm.db.write() as session:
        row = session.get(Setting, LAST_BACKUP_KEY)
        value = utcnow().isoformat()
        if row is None:
            session.add(Setting(key=LAST_BACKUP_KEY, value=value))
        else:
            row.value = value


def last_backup_at(crm: Crm) -> dt.datetime | None:
    """When the last backup was made, if ever."""
    from core.models import Setting

    with crm.db.session() as session:
        row = session.get(Setting, LAST_BACKUP_KEY)
    return dt.datetime.fromisoformat(row.value) if row is not None else None
