"""What the concurrency, crash and backup tests share: fresh databases on SQLite and
PostgreSQL, a CRM with every built-in module, ``crm`` commands and servers as real processes,
worker scripts, and digests (row count and checksum per table) to compare databases exactly.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, inspect, text

from tests.conftest import ROOT, TEST_SECRET, postgres_url_or_skip

#: Every built-in module, dependencies first.
MODULES = ("operational", "analytical", "smart_sales", "collaborative")
ADMIN = "admin@example.com"
ADMIN_PASSWORD = "Admin-pass-123"
#: The worker scripts the tests start as separate processes.
WORKER = Path(__file__).resolve().parent / "d_worker.py"
#: Variables of the test runner's environment that the processes keep.
KEPT = ("CRM_TEST_POSTGRES_URL", "CRM_REQUIRE_POSTGRES", "CRM_RELIABILITY_PROFILE")


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """A new, empty database URL: an SQLite file in ``folder``, or a PostgreSQL database
    (dropped afterwards) on the server of ``CRM_TEST_POSTGRES_URL``."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'crm.db'}"
        return
    from core.testing import postgres_database

    with postgres_database(postgres_url_or_skip(os.environ.get("CRM_TEST_POSTGRES_URL"))) as url:
        yield url


def crm_env(url: str, folder: Path, modules: tuple[str, ...] = MODULES) -> dict[str, str]:
    """The ``CRM_*`` settings of a CRM on ``url`` loading ``modules``."""
    return {
        "CRM_DATABASE_URL": url,
        "CRM_SECRET_KEY": TEST_SECRET,
        "CRM_BACKUP_DIR": str(folder / "backups"),
        "CRM_LOAD_PLUGINS": ",".join(modules),
        "CRM_WEBHOOKS_IN_SERVER": "false",
    }


def process_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of a child process: the runner's without its other ``CRM_*``, ``env``,
    and the project on the import path."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") or k in KEPT}
    return {**base, **env, "PYTHONPATH": str(ROOT)}


def open_crm(env: dict[str, str]) -> Any:
    """A ``Crm`` of ``env`` in this process."""
    from core.runtime import Crm
    from core.settings import load_settings

    return Crm(load_settings(environ=env))


def build_crm(env: dict[str, str], modules: tuple[str, ...] = MODULES) -> Any:
    """Initialise the database of ``env`` with an admin, enable ``modules``; the ``Crm``."""
    from core import modules as lifecycle
    from core.bootstrap import initialise

    crm = open_crm(env)
    initialise(crm, ADMIN, ADMIN_PASSWORD)
    if modules:
        lifecycle.enable(crm, list(modules))
        crm.refresh()
    return crm


def admin_token(crm: Any) -> str:
    """A new API token of the admin."""
    from sqlalchemy import select

    from core import auth
    from core.models import User

    with crm.db.write() as session:
        admin = session.scalars(select(User).where(User.email == ADMIN)).one()
        return auth.create_token(session, admin, "reliability").secret


def run_crm(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``crm ARGS`` as a process; its outcome (not checked)."""
    return subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", *args],
        env=process_env(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_worker(env: dict[str, str], *args: str, **popen: Any) -> subprocess.Popen:
    """Start ``d_worker.py ARGS`` as a process of its own."""
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args], env=process_env(env), cwd=ROOT, **popen
    )


class Serve:
    """``crm serve`` as a process on a free loopback port."""

    def __init__(self, env: dict[str, str], workers: int = 2) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        args = ["serve", "--port", str(port), "--workers", str(workers)]
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import cli; cli.main()", *args],
            env=process_env(env),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"crm serve stopped: {self.process.communicate()[0]}")
            try:
                httpx.get(f"{self.base}/api/health", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("crm serve did not start within 60 s")

    def stop(self) -> str:
        """Stop the server; what it printed."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.communicate(timeout=30)[0]


def wait_for(condition: Any, timeout: float, what: str, every: float = 0.01) -> Any:
    """Poll ``condition()`` until it returns something true; that value. Fails after
    ``timeout`` seconds saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what} did not happen within {timeout} s")


# --- comparing databases ----------------------------------------------------------------------


def tables(conn: Connection) -> list[str]:
    """The database's tables, by name."""
    return sorted(inspect(conn).get_table_names())


def _canonical(value: Any) -> str:
    """One spelling of a value on both databases (timestamps as stored, money as integers)."""
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return repr(value)


def table_digest(conn: Connection, table: str, skip: dict[str, Any] | None = None) -> tuple:
    """``(row count, sha256 of the rows in primary key order)`` of ``table``; rows matching
    every ``column: value`` of ``skip`` are left out."""
    info = inspect(conn)
    columns = [c["name"] for c in info.get_columns(table)]
    order = info.get_pk_constraint(table).get("constrained_columns") or columns
    quoted = ", ".join(f'"{c}"' for c in columns)
    where = ""
    params: dict[str, Any] = {}
    if skip:
        where = " WHERE NOT (" + " AND ".join(f'"{c}" = :s_{c}' for c in skip) + ")"
        params = {f"s_{c}": v for c, v in skip.items()}
    rows = conn.execute(
        text(
            f'SELECT {quoted} FROM "{table}"{where} ORDER BY ' + ", ".join(f'"{c}"' for c in order)
        ),
        params,
    )
    sha = hashlib.sha256()
    count = 0
    for row in rows:
        count += 1
        sha.update("\x1f".join(_canonical(v) for v in row).encode())
        sha.update(b"\x1e")
    return count, sha.hexdigest()


def digest(conn: Connection, skip: dict[str, dict[str, Any]] | None = None) -> dict[str, tuple]:
    """:func:`table_digest` of every table; ``skip`` maps a table to the rows to leave out."""
    skip = skip or {}
    return {table: table_digest(conn, table, skip.get(table)) for table in tables(conn)}


def sqlite_integrity(url: str) -> str:
    """``PRAGMA integrity_check`` of an SQLite database (``ok`` when intact)."""
    import sqlite3

    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
    result = "; ".join(r[0] for r in rows)
    return result if not fk else f"{result}; foreign key violations: {fk[:5]}"
