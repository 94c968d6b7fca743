"""Database behaviour: SQLite pragmas and IMMEDIATE writes, UTC timestamps, money, audit rows."""

import datetime as dt
import sqlite3
from decimal import Decimal

import pytest
from sqlalchemy import text

from core.db import Database, UTCDateTime
from core.money import Money


def test_sqlite_connection_settings(sqlite_url):
    db = Database(sqlite_url)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    db.dispose()


def test_write_sessions_take_the_write_lock_at_begin(sqlite_url, tmp_path):
    db = Database(sqlite_url)
    with db.write() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
    other = sqlite3.connect(tmp_path / "crm.db", timeout=0.1, isolation_level=None)
    with db.write() as session:
        session.execute(text("SELECT 1"))  # no write yet, but BEGIN IMMEDIATE holds the lock
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    with db.session() as session:
        session.execute(text("SELECT count(*) FROM t"))  # a read begins deferred
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES (1)")
        other.execute("COMMIT")
    other.close()
    db.dispose()


def test_ddl_is_transactional_on_sqlite(sqlite_url):
    db = Database(sqlite_url)
    with pytest.raises(RuntimeError), db.write() as session:
        session.execute(text("CREATE TABLE gone (x INTEGER)"))
        raise RuntimeError("roll back")
    with db.engine.connect() as conn:
        assert (
            conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE name='gone'").scalar()
            == 0
        )
    db.dispose()


def test_timestamps_are_aware_utc_and_naive_ones_refused():
    kind = UTCDateTime()
    dialect = type("D", (), {"name": "sqlite"})()
    hanoi = dt.timezone(dt.timedelta(hours=7))
    stored = kind.process_bind_param(dt.datetime(2026, 1, 1, 7, 0, tzinfo=hanoi), dialect)
    assert stored == dt.datetime(2026, 1, 1, 0, 0)
    assert kind.process_result_value(stored, dialect).tzinfo == dt.UTC
    with pytest.raises(ValueError, match="naive"):
        kind.process_bind_param(dt.datetime(2026, 1, 1), dialect)


def test_money_is_integer_minor_units():
    assert Money.parse("150000", "VND") == Money(150000, "VND")
    assert Money.parse("1,026.55", "USD").amount == 102655
    assert Money.parse(Decimal("0.1"), "USD") + Money.parse("0.2", "USD") == Money(30, "USD")
    assert Money(150000, "VND").format("vi") == "150.000\xa0₫"
    with pytest.raises(ValueError, match="more decimals than VND"):
        Money.parse("1000.5", "VND")
    with pytest.raises(TypeError, match="floats"):
        Money.parse(10.5, "USD")
    with pytest.raises(TypeError):
        Money(10.5, "USD")
    with pytest.raises(ValueError, match="unknown currency"):
        Money(1, "XYZ")
    with pytest.raises(ValueError, match="cannot combine"):
        Money(1, "USD") + Money(1, "VND")


def test_audit_log_is_append_only(crm):
    with crm.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM core_audit_log")).scalar_one() > 0
    for statement in (
        "UPDATE core_audit_log SET actor = 'someone else'",
        "DELETE FROM core_audit_log",
    ):
        with pytest.raises(Exception, match="append-only"), crm.db.engine.begin() as conn:
            conn.execute(text(statement))


def test_orm_changes_are_audited_with_before_and_after(crm):
    from sqlalchemy import select

    from core import audit
    from core.models import AuditLog, User

    with audit.acting_as(audit.Actor("tester@example.com", 1)), crm.db.write() as session:
        user = session.scalar(select(User))
        user.name = "Quản trị viên"
    with crm.db.session() as session:
        row = session.scalars(
            select(AuditLog).where(AuditLog.model == "core_user", AuditLog.action == "update")
        ).one()
    assert row.actor == "tester@example.com"
    assert row.before == {"name": "Administrator"} and row.after == {"name": "Quản trị viên"}
    assert row.at.tzinfo is not None
    created = [r for r in _audit(crm) if r.action == "create" and r.model == "core_user"]
    assert "password_hash" not in created[0].after


def _audit(crm):
    from sqlalchemy import select

    from core.models import AuditLog

    with crm.db.session() as session:
        return session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
