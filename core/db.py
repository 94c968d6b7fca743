"""Database engine, sessions and column types shared by the core and plugins.

SQLite is opened with WAL, foreign keys on and a busy timeout; transactions of a *write*
session begin with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing with
"database is locked" half-way. Reads begin deferred. DDL is transactional on both databases.

Transactions run at PostgreSQL's default, READ COMMITTED: lost updates are prevented by
version columns (``version_id_col``) and conditional updates, duplicates by unique keys. A unit
of work that needs more asks for it (``write(isolation="SERIALIZABLE")``). PostgreSQL may abort
a transaction that did nothing wrong: the victim of a deadlock, or a
``SERIALIZABLE``/``REPEATABLE READ`` transaction that lost a race ("could not serialize").
Re-running the whole transaction is the cure: :meth:`Database.run_write` does so for a unit of
work, the web app (:mod:`core.web.transactions`) for a whole request, a bounded number of times
with jittered backoff; then :class:`Contended` says so plainly. What leaves the process happens
after commit only (hooks through :mod:`core.events`, e-mails and webhooks from outbox rows
written in the transaction), so a re-run duplicates nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from core.errors import CrmError

T = TypeVar("T")
log = logging.getLogger("crm.db")

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "crm_write"
#: How many times a unit of work (or a web request) is tried before :class:`Contended`.
WRITE_ATTEMPTS = 5
#: Backoff before attempt n+1: a random delay up to ``min(cap, base * 2**n)`` seconds.
RETRY_BASE_SECONDS = 0.02
RETRY_CAP_SECONDS = 0.5
#: SQLSTATEs after which running the transaction again is PostgreSQL's documented cure.
RETRYABLE_SQLSTATES = {"40001": "serialization failure", "40P01": "deadlock detected"}
#: Retries (by reason) and give-ups (``gave up``) in this process: the retry metric.
RETRIES: Counter[str] = Counter()

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every ORM model, core and plugins alike."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every database.

    Naive datetimes are refused; values come back aware, in UTC, also from SQLite.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        """Convert an aware datetime to UTC before it is stored."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        """Return stored values as aware UTC datetimes."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the product's connection settings."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module so that BEGIN is ours
        # (and DDL runs inside transactions).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        if options.get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


class Contended(CrmError):
    """A write transaction kept being aborted by concurrent ones; nothing of it was committed.

    The caller may try again later (the web app answers 503 with ``Retry-After``).
    """


def retryable_cause(exc: BaseException) -> str | None:
    """Why re-running the transaction that raised ``exc`` may succeed (a deadlock, a
    serialization failure), looking through SQLAlchemy's wrapper and exception chains;
    ``None`` when it would fail again."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (current, getattr(current, "orig", None)):
            reason = RETRYABLE_SQLSTATES.get(getattr(candidate, "sqlstate", None) or "")
            if reason is not None:
                return reason
        current = current.__cause__ or current.__context__
    return None


def unique_violation(exc: BaseException) -> tuple[str, ...] | None:
    """The columns (``table.column``) of the unique key whose violation raised ``exc`` (or an
    exception it was raised from), as far as the database says; ``None`` for other errors."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (current, getattr(current, "orig", None)):
            if getattr(candidate, "sqlstate", None) == "23505":  # PostgreSQL unique_violation
                diag = candidate.diag  # type: ignore[union-attr]
                return _constraint_columns(diag.table_name, diag.constraint_name)
            message = str(candidate) if candidate is not None else ""
            if type(candidate).__name__ == "IntegrityError" and message.startswith(
                "UNIQUE constraint failed: "
            ):  # SQLite names the columns itself
                return tuple(message.removeprefix("UNIQUE constraint failed: ").split(", "))
        current = current.__cause__ or current.__context__
    return None


def _constraint_columns(table_name: str | None, name: str | None) -> tuple[str, ...]:
    table = Base.metadata.tables.get(table_name or "")
    if table is not None:
        keys = [*table.constraints, *table.indexes]
        for key in keys:
            if key.name == name:
                return tuple(f"{table.name}.{column.name}" for column in key.columns)
    return (f"{table_name}.{name}",)


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, fully jittered,
    so that the transactions that collided do not collide again in step."""
    return random.uniform(0, min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2**attempt))


def note_retry(reason: str, attempt: int, attempts: int, what: str) -> None:
    """Count and log one retry of ``what`` (a unit of work, a request)."""
    RETRIES[reason] += 1
    log.warning("%s: %s, running it again (attempt %d of %d)", what, reason, attempt + 1, attempts)


def note_give_up(reason: str, attempts: int, what: str) -> str:
    """Count and log giving up on ``what``; the message to show."""
    RETRIES["gave up"] += 1
    message = (
        f"{what} was aborted {attempts} times by concurrent changes ({reason});"
        " nothing was saved, try again"
    )
    log.error(message)
    return message


def write_engine(engine: Engine) -> Engine:
    """The same engine, marked so its transactions take the write lock at BEGIN on SQLite."""
    return engine.execution_options(**{WRITE_OPTION: True})


def connection_of(db: Session | Connection) -> Connection:
    """The Core connection behind a session, or the connection itself."""
    return db.connection() if isinstance(db, Session) else db


class PreparedRead:
    """A Core ``SELECT`` compiled once per dialect and run on the driver's connection.

    For the hottest read paths (authentication, one customer): it skips SQLAlchemy's
    per-execution work and still converts results with the columns' types (timestamps,
    booleans). Bind parameters are passed to the driver as they are, so use plain ints and
    strings.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, list[str] | None, list[Any]]] = {}

    def _compile(self, dialect: Dialect) -> tuple[str, list[str] | None, list[Any]]:
        compiled = self.statement.compile(dialect=dialect)
        names = list(compiled.positiontup) if compiled.positional else None
        processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in self.statement.selected_columns
        ]
        found = (str(compiled), names, processors)
        self._compiled[dialect.name] = found
        return found

    def rows(self, conn: Connection, **params: Any) -> list[tuple[Any, ...]]:
        """Every result row, values converted by their column types."""
        sql, names, processors = self._compiled.get(conn.dialect.name) or self._compile(
            conn.dialect
        )
        args = [params[n] for n in names] if names is not None else params
        for attempt in (1, 2):
            driver = conn.connection.driver_connection
            try:
                cursor = driver.execute(sql, args)
                break
            except conn.dialect.loaded_dbapi.Error as exc:
                if attempt == 2 or not conn.dialect.is_disconnect(exc, driver, None):
                    raise
                conn.invalidate()  # the server went away: reconnect and read again, once
        return [
            tuple(p(v) if p is not None else v for p, v in zip(processors, row, strict=True))
            for row in cursor.fetchall()
        ]


class Database:
    """An engine with its read and write session factories."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self._local = threading.local()
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.writer = write_engine(self.engine)
        self._read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self.writer, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read session; its transaction ends unwritten (use ``write`` to change data).

        Objects loaded through it stay readable after the block.
        """
        with self._read_sessions() as session:
            yield session

    def reader(self) -> Connection:
        """A connection for quick reads on the calling thread: kept open, in autocommit mode.

        The web app's read path uses it from the event loop, so a request pays neither a pool
        checkout nor BEGIN and ROLLBACK. Each statement sees the latest committed data.
        """
        conn = getattr(self._local, "reader", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._local.reader = conn
        return conn

    @contextmanager
    def write(self, isolation: str | None = None) -> Iterator[Session]:
        """A session whose transaction commits when the block ends, rolls back on error.

        ``isolation`` (``"SERIALIZABLE"``, ``"REPEATABLE READ"``) raises PostgreSQL's level for
        this transaction; such a transaction belongs in :meth:`run_write`, which re-runs it when
        it loses a race. SQLite's write transactions are serializable already (one at a time).
        """
        with self._write_sessions() as session, session.begin():
            if isolation is not None and self.dialect != "sqlite":
                session.connection(execution_options={"isolation_level": isolation})
            yield session

    def run_write(
        self,
        work: Callable[[Session], T],
        *,
        attempts: int = WRITE_ATTEMPTS,
        isolation: str | None = None,
        what: str = "write transaction",
    ) -> T:
        """``work(session)`` in a write transaction, committed; its result.

        When PostgreSQL aborts the transaction as a deadlock victim or a serialization failure,
        it is rolled back and ``work`` runs again in a new one, at most ``attempts`` times in
        all, with jittered backoff between; then :class:`Contended` is raised. ``work`` must
        therefore do nothing outside the database that it cannot do twice (queue e-mails and
        webhooks as rows, emit hooks with :func:`core.events.emit`).
        """
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        for attempt in range(1, attempts + 1):
            try:
                with self.write(isolation) as session:
                    return work(session)
            except Exception as exc:
                reason = retryable_cause(exc)
                if reason is None:
                    raise
                if attempt == attempts:
                    raise Contended(note_give_up(reason, attempts, what)) from exc
                note_retry(reason, attempt, attempts, what)
                time.sleep(retry_delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def dispose(self) -> None:
        """Close every pooled connection (and this thread's reader)."""
        reader = getattr(self._local, "reader", None)
        if reader is not None:
            reader.close()
            self._local.reader = None
        self.engine.dispose()
