"""Processes killed with SIGKILL half-way leave a consistent database, and running the work again
completes it, on SQLite and PostgreSQL.

- ``crm customers import`` of a big file, killed when it has read half of it: the database is
  intact (``PRAGMA integrity_check``; foreign keys) and holds what it held before (an import is
  one transaction), and running the import again gives every customer exactly once.
- ``crm modules enable`` of the four modules, killed inside the migrations of the first one:
  no table of theirs is left, the next start (``crm serve``) repairs the module states and says
  so, and enabling again works and leaves the schema current.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.profile import pick
from tests.reliability.d_kit import (
    MODULES,
    Serve,
    build_crm,
    crm_env,
    fresh_database,
    open_crm,
    process_env,
    run_crm,
    sqlite_integrity,
    start_worker,
    tables,
    wait_for,
)

ROWS = pick(20_000, 100_000)
#: Rows imported (and committed) before the import that is killed.
BEFORE = ROWS // 5


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A fresh database with the core installed (URL, CRM settings)."""
    with fresh_database(request.param, tmp_path) as url:
        env = crm_env(url, tmp_path, modules=())
        build_crm(env, modules=()).close()
        yield url, env


def _read_offset(pid: int, path: Path) -> int:
    """How far process ``pid`` has read the file at ``path`` (0 before it opens it)."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        for fd in fds.iterdir():
            if os.readlink(fd) == str(path):
                info = (Path(f"/proc/{pid}/fdinfo") / fd.name).read_text()
                return int(info.split("pos:")[1].split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _consistent(url: str, env: dict[str, str]) -> None:
    """The database after a crash: SQLite passes its integrity and foreign key checks;
    PostgreSQL has no session of the dead process left and every reference resolves."""
    if url.startswith("sqlite"):
        assert sqlite_integrity(url) == "ok"
        return
    crm = open_crm(env)
    with crm.db.engine.connect() as conn:
        wait_for(
            lambda: (
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
                == 0
            ),
            30,
            "the killed process's session ending",
            every=0.1,
        )
        orphans = conn.execute(
            text(
                "SELECT count(*) FROM core_customer_identity i"
                " LEFT JOIN core_customer c ON c.id = i.customer_id WHERE c.id IS NULL"
            )
        ).scalar_one()
    crm.close()
    assert orphans == 0


def _count(env: dict[str, str], sql: str) -> tuple:
    crm = open_crm(env)
    with crm.db.engine.connect() as conn:
        row = tuple(conn.execute(text(sql)).one())
    crm.close()
    return row


@dataclass(frozen=True)
class Import:
    """One kind of import: the modules it needs, how to write a file of ``rows`` units
    (customers, orders) and its first ``first`` units apart (``NAME.first.csv``), the command,
    and a query of what the database holds of it, whose first values must be ``complete(rows)``
    once everything is in."""

    modules: tuple[str, ...]
    write: Callable[[Path, int, int], None]
    command: tuple[str, ...]
    held: str
    complete: Callable[[int], tuple]


def _customers_csv(path: Path, rows: int, first: int) -> None:
    from core.demo import write_csv

    write_csv(path, rows)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.with_suffix(".first.csv").write_text("".join(lines[: first + 1]), encoding="utf-8")


def _orders_csv(path: Path, rows: int, first: int) -> None:
    header = "order_ref,customer_ref,customer_name,placed_at,sku,quantity,unit_price,currency\n"
    with (
        open(path, "w", encoding="utf-8") as full,
        open(path.with_suffix(".first.csv"), "w", encoding="utf-8") as start,
    ):
        full.write(header)
        start.write(header)
        for order in range(rows):
            lines = [
                f"DH-{order:07d},KH-{order % 997},Khách {order % 997},2026-01-{order % 28 + 1:02d},"
                f"SP-{(order + line) % 50},{line + 1},{(order % 90 + 10) * 1000},VND\n"
                for line in range(1 + order % 2)  # one or two lines an order
            ]
            full.writelines(lines)
            if order < first:
                start.writelines(lines)


IMPORTS = {
    "customers": Import(
        (),
        _customers_csv,
        ("customers", "import"),
        # rows carry an external ref; companies named in a row's company column are made by
        # the import without one, once per name
        "SELECT count(external_ref), count(DISTINCT external_ref),"
        " count(*) FILTER (WHERE external_ref IS NULL) - count(DISTINCT search_key)"
        " FILTER (WHERE external_ref IS NULL),"
        " (SELECT count(*) FROM core_customer_identity) FROM core_customer",
        lambda rows: (rows, rows, 0),
    ),
    "orders": Import(
        ("operational",),
        _orders_csv,
        ("orders", "import", "--create-customers"),
        "SELECT count(*), count(DISTINCT ref),"
        " (SELECT count(*) FROM operational_order_line),"
        " (SELECT count(*) FROM operational_product),"
        " (SELECT count(*) FROM core_customer) FROM operational_order",
        lambda rows: (rows, rows, rows + rows // 2, 50, 997),
    ),
}


@pytest.mark.parametrize("what", sorted(IMPORTS))
def test_an_import_killed_half_way_leaves_the_database_as_it_was_and_reruns_cleanly(
    db: tuple[str, dict[str, str]], tmp_path: Path, what: str
) -> None:
    kind = IMPORTS[what]
    url, core_only = db
    env = crm_env(url, tmp_path, modules=kind.modules)
    if kind.modules:
        from core import modules

        crm = open_crm(env)
        modules.enable(crm, list(kind.modules))
        crm.close()
    full = tmp_path / f"{what}.csv"
    kind.write(full, ROWS, BEFORE)

    def run(path: Path) -> dict[str, Any]:
        done = run_crm(env, *kind.command, str(path), "--format", "json", timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout)

    assert run(full.with_suffix(".first.csv"))["created"] == BEFORE
    before = _count(env, kind.held)

    importing = subprocess.Popen(
        [sys.executable, "-c", "import cli; cli.main()", *kind.command, str(full)],
        env=process_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    half = full.stat().st_size // 2
    wait_for(
        lambda: _read_offset(importing.pid, full) >= half or importing.poll() is not None,
        300,
        "the import reading half of the file",
    )
    assert importing.poll() is None, "the import ended before it could be killed"
    importing.send_signal(signal.SIGKILL)
    assert importing.wait(30) == -signal.SIGKILL

    _consistent(url, core_only)
    assert _count(env, kind.held) == before  # one transaction: nothing of the killed run
    again = run(full)
    assert (again["created"], again["unchanged"], again["rejected"]) == (ROWS - BEFORE, BEFORE, 0)
    assert _count(env, kind.held)[: len(kind.complete(ROWS))] == kind.complete(ROWS)


def test_an_enable_killed_inside_the_migrations_is_repaired_on_the_next_start(
    db: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    from core import migrate

    url, core_only = db
    env = crm_env(url, tmp_path)  # the same database, every module's plugin loaded
    crm = open_crm(env)
    with crm.db.engine.connect() as conn:
        before = tables(conn)
        revisions = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    crm.close()

    ready = tmp_path / "stalled"
    enabling = start_worker(env, "enable-stall", str(ready), *MODULES)
    wait_for(lambda: ready.exists() or enabling.poll() is not None, 120, "the migrations")
    assert enabling.poll() is None, "enable finished before it could be killed"
    created = json.loads(ready.read_text())
    assert all(name.startswith("operational_") for name in created), created
    enabling.send_signal(signal.SIGKILL)
    assert enabling.wait(30) == -signal.SIGKILL

    _consistent(url, core_only)
    crm = open_crm(env)
    with crm.db.engine.connect() as conn:
        assert tables(conn) == before  # the migrations' transaction never committed
        assert set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) == (
            revisions
        )
        marks = dict(conn.execute(text("SELECT name, state FROM core_module")).all())
    crm.close()
    assert {marks[m] for m in MODULES} == {"to_install"}  # what the next start must repair

    server = Serve(env, workers=1)
    log = server.stop()
    assert "interrupted module operation: operational: to_install" in log
    listed = run_crm(env, "modules", "list", "--format", "json")
    states = {m["name"]: m for m in json.loads(listed.stdout)}
    assert {states[m]["state"] for m in MODULES} == {"uninstalled"}
    assert all(any("interrupted" in e for e in states[m]["errors"]) for m in MODULES)

    enabled = run_crm(env, "modules", "enable", *MODULES)
    assert enabled.returncode == 0, enabled.stderr[-3000:]
    crm = open_crm(env)
    assert migrate.check_current(crm, list(MODULES)) == []
    assert set(crm.enabled_modules()) >= set(MODULES)
    crm.close()
    _consistent(url, core_only)
