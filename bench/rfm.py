"""RFM over 10,000,000 orders of 1,000,000 customers against reading the same columns into
Python and aggregating there, measured in the same run.

Run: ``.venv/bin/python bench/rfm.py [--customers 1000000] [--lines 10000000] [--repeat 3]
[--database sqlite|postgresql --url postgresql://user:pw@host/admin_db] [--keep DIR]``.

- data: a fresh database (a temporary SQLite file, or a new PostgreSQL database created
  through ``--url`` and dropped at the end), initialised with the operational and analytical
  modules, then filled in SQL (``WITH RECURSIVE`` on SQLite, ``generate_series`` on
  PostgreSQL): ``--customers`` customers and ``--lines`` orders of one line each (RFM reads
  the order table only, so "order lines" are orders here; the line table is left empty), each
  order for a random customer (so frequencies are Poisson-like, with many ties), placed on one
  of 730 days before the as-of date at a random second, 1 in 10 cancelled or returned, the
  total 10,000 to 5,000,000 minor units.
- product: ``rfm.refresh`` (scores and segments computed in SQL, stored with one
  ``INSERT ... SELECT`` into ``analytical_rfm``, the summary's ``GROUP BY``) and the commit.
  Between runs the stored run is deleted (untimed), so every run does the same work.
- reference: the DB-API cursor reading ``customer_id, placed_at, total_minor, status`` of every
  order into Python and aggregating last order, count and sum per customer with a dict
  (cancelled and returned orders and orders after the as-of date skipped; no scoring, nothing
  stored).

Target (issue 6): the product in no more time than the reference (ratio <= 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AS_OF = dt.date(2026, 6, 30)
DAYS = 730
SECRET = "bench-secret-key-0123456789abcdef0123456789"

SQLITE_CUSTOMERS = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
INSERT INTO core_customer (kind, display_name, search_key, archived, created_at, updated_at,
                           version)
SELECT 'person', 'Khách ' || i, 'khach ' || i, 0, :now, :now, 1 FROM n
"""
SQLITE_ORDERS = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
INSERT INTO operational_order (ref, customer_id, status, placed_at, currency, total_minor,
                               created_at, version)
SELECT 'B' || i, :first + abs(random()) % :customers,
       CASE abs(random()) % 20 WHEN 0 THEN 'cancelled' WHEN 1 THEN 'returned'
            ELSE 'delivered' END,
       datetime(:start, '+' || (abs(random()) % (:days * 86400)) || ' seconds'),
       'VND', 10000 + (abs(random()) % 500) * 10000, :now, 1
FROM n
"""
PG_CUSTOMERS = """
INSERT INTO core_customer (kind, display_name, search_key, archived, created_at, updated_at,
                           version)
SELECT 'person', 'Khách ' || i, 'khach ' || i, false, now(), now(), 1
FROM generate_series(1, :count) AS i
"""
PG_ORDERS = """
INSERT INTO operational_order (ref, customer_id, status, placed_at, currency, total_minor,
                               created_at, version)
SELECT 'B' || i, :first + floor(random() * :customers)::int,
       CASE floor(random() * 20)::int WHEN 0 THEN 'cancelled' WHEN 1 THEN 'returned'
            ELSE 'delivered' END,
       CAST(:start AS timestamptz) + floor(random() * :days * 86400) * interval '1 second',
       'VND', 10000 + floor(random() * 500)::bigint * 10000, now(), 1
FROM generate_series(1, :count) AS i
"""


def open_crm(url: str, workdir: Path) -> Any:
    """An initialised CRM on ``url`` with the operational and analytical modules enabled."""
    from core import modules
    from core.bootstrap import initialise
    from core.runtime import Crm
    from core.settings import load_settings

    env = {
        "CRM_DATABASE_URL": url,
        "CRM_SECRET_KEY": SECRET,
        "CRM_BACKUP_DIR": str(workdir / "backups"),
        "CRM_LOAD_PLUGINS": "operational,analytical",
    }
    crm = Crm(load_settings(environ=env))
    initialise(crm, "admin@example.com", "Bench-pass-123")
    modules.enable(crm, ["analytical"])
    crm.refresh()
    return crm


def generate(crm: Any, customers: int, lines: int) -> None:
    """Fill the customer and order tables in SQL, in one transaction each."""
    from sqlalchemy import func, select, text

    from core.customers.models import Customer

    sqlite = crm.db.engine.dialect.name == "sqlite"
    start = dt.datetime.combine(AS_OF - dt.timedelta(days=DAYS - 1), dt.time())
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    with crm.db.engine.begin() as conn:
        conn.execute(
            text(SQLITE_CUSTOMERS if sqlite else PG_CUSTOMERS), {"count": customers, "now": now}
        )
        first = conn.execute(select(func.min(Customer.id))).scalar_one()
    params = {
        "count": lines,
        "first": first,
        "customers": customers,
        "start": start.isoformat(sep=" ") + ("" if sqlite else "+00"),
        "days": DAYS,
        "now": now,
    }
    with crm.db.engine.begin() as conn:
        conn.execute(text(SQLITE_ORDERS if sqlite else PG_ORDERS), params)
    with crm.db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    if sqlite:  # a steady-state database: the generated pages moved from the WAL into the file
        with crm.db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def product(crm: Any) -> tuple[float, int]:
    """Seconds of ``rfm.refresh`` and its commit; the stored run is then deleted (untimed)."""
    from sqlalchemy import delete
    from sqlalchemy.orm import Session

    from plugins.analytical import rfm
    from plugins.analytical.models import RfmScore, Run

    with Session(crm.db.engine) as session:
        started = time.perf_counter()
        run, _counts = rfm.refresh(session, AS_OF)
        session.commit()
        seconds = time.perf_counter() - started
        rows = run.rows
        session.execute(delete(RfmScore).where(RfmScore.run_id == run.id))
        session.execute(delete(Run).where(Run.id == run.id))
        session.commit()
    return seconds, rows


def reference(crm: Any) -> tuple[float, int]:
    """Seconds to read the four columns with the DB-API cursor and aggregate in dicts."""
    sqlite = crm.db.engine.dialect.name == "sqlite"
    end = dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time())
    end_value: Any = end.isoformat(sep=" ") if sqlite else end.replace(tzinfo=dt.UTC)
    skipped = {"cancelled", "returned"}
    raw = crm.db.engine.raw_connection()
    try:
        started = time.perf_counter()
        cursor = raw.cursor()
        cursor.execute("SELECT customer_id, placed_at, total_minor, status FROM operational_order")
        last: dict[int, Any] = {}
        count: dict[int, int] = {}
        total: dict[int, int] = {}
        while batch := cursor.fetchmany(100_000):
            for customer, placed, amount, status in batch:
                if status in skipped or placed >= end_value:
                    continue
                if customer in count:
                    count[customer] += 1
                    total[customer] += amount
                    if placed > last[customer]:
                        last[customer] = placed
                else:
                    count[customer], total[customer], last[customer] = 1, amount, placed
        seconds = time.perf_counter() - started
        raw.rollback()
    finally:
        raw.close()
    return seconds, len(count)


def _database(args: argparse.Namespace, workdir: Path) -> tuple[str, str | None]:
    """The database URL to use and, for PostgreSQL, the name of the database to drop."""
    if args.database == "sqlite":
        return f"sqlite:///{workdir / 'rfm.db'}", None
    if not args.url:
        raise SystemExit("--database postgresql needs --url (an admin URL)")
    import psycopg

    name = f"crm_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = args.url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}", name


def _drop(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(crm: Any, repeat: int) -> None:
    """Alternate product and reference runs; print the medians and the ratio."""
    products, references, scored, read = [], [], 0, 0
    for _ in range(repeat):
        seconds, scored = product(crm)
        products.append(seconds)
        seconds, read = reference(crm)
        references.append(seconds)
    assert scored == read, (scored, read)  # both saw the same customers
    mine, theirs = statistics.median(products), statistics.median(references)
    verdict = "met" if mine <= theirs else "NOT met"
    print(f"customers scored: {scored:,}; runs: {repeat} (medians)")
    print(f"product   rfm.refresh (SQL + INSERT ... SELECT + commit): {mine:7.2f} s")
    print(f"reference read 4 columns + aggregate in Python dicts:    {theirs:7.2f} s")
    print(f"ratio product/reference: {mine / theirs:5.2f}   (target <= 1: {verdict})")


def main() -> None:
    """Parse options, build the database, measure, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=10_000_000, help="orders, one line each")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--url", default=None, help="PostgreSQL admin URL (postgresql://...)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="crm-bench-rfm-") as tmp:
        workdir = Path(tmp)
        url, dropped = _database(args, workdir)
        try:
            crm = open_crm(url, workdir)
            started = time.perf_counter()
            generate(crm, args.customers, args.lines)
            print(
                f"{args.database}: generated {args.customers:,} customers and "
                f"{args.lines:,} orders in {time.perf_counter() - started:.1f} s"
            )
            measure(crm, args.repeat)
            crm.close()
        finally:
            if dropped:
                _drop(args.url, dropped)


if __name__ == "__main__":
    main()
