"""PostgreSQL aborts transactions that did nothing wrong; the product runs them again.

A deadlock victim (SQLSTATE 40P01) or a transaction that cannot be serialized (40001) is rolled
back whole; the cure is to run it again. ``Database.run_write`` does so for a unit of work and
the web app's transaction middleware for a request, a bounded number of times with jittered
backoff, then give up with a clear error (``Contended``; 503 with ``Retry-After`` on the web).
The conflicts here are real, provoked on a real server: transfers between two rows taken in
opposite orders, read-modify-write increments at SERIALIZABLE, and a request made to deadlock
with a transaction of the test. Counts must be exact, side effects single, retries observed.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from core import db
from tests.profile import pick
from tests.reliability.d_kit import (
    admin_token,
    build_crm,
    crm_env,
    fresh_database,
    start_worker,
    wait_for,
)

WORKERS = 4
#: Units of work per worker process.
UNITS = pick(60, 400)
START_UNITS = 1_000_000


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Any]]:
    """A fresh PostgreSQL database with the core installed: (libpq URL, CRM settings, Crm).

    Deadlocks are detected after 50 ms instead of a second, so that each costs little."""
    with fresh_database("postgres", tmp_path) as url:
        libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(libpq, autocommit=True) as conn:
            name = make_url(url).database
            conn.execute(f"ALTER DATABASE \"{name}\" SET deadlock_timeout = '50ms'")
        env = {**crm_env(url, tmp_path, modules=()), "CRM_WEBHOOKS_ALLOW_PRIVATE": "true"}
        crm = build_crm(env, modules=())
        yield libpq, env, crm
        crm.close()


def _run_workers(env: dict[str, str], command: str, folder: Path) -> list[dict[str, Any]]:
    go = folder / f"go-{command}"
    workers = [
        start_worker(
            env,
            command,
            str(index),
            str(UNITS),
            str(go),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(WORKERS)
    ]
    time.sleep(2)  # every worker has imported the product and connected
    go.touch()
    reports = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr[-3000:]
        reports.append(json.loads(stdout.strip().splitlines()[-1]))
    return reports


def test_deadlock_victims_are_run_again_and_their_side_effects_written_once(
    pg: tuple[str, dict[str, str], Any], tmp_path: Path
) -> None:
    """Four processes move units between two rows, two of them in the opposite order: the
    deadlocks PostgreSQL breaks are retried, every transfer lands exactly once, and so does
    the outbox row each one queues."""
    libpq, env, _ = pg
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("CREATE TABLE d_account (id int PRIMARY KEY, units bigint NOT NULL)")
        conn.execute("INSERT INTO d_account VALUES (1, %s), (2, %s)", (START_UNITS, START_UNITS))
        conn.execute("CREATE TABLE d_outbox (worker int NOT NULL, item int NOT NULL)")
    reports = _run_workers(env, "deadlock", tmp_path)
    assert [r["errors"] for r in reports] == [[]] * WORKERS
    retried = sum(r["retried"] for r in reports)
    assert retried > 0, "no deadlock happened: the test provoked nothing"
    assert all(set(r["retries"]) <= {"deadlock detected"} for r in reports), reports
    with psycopg.connect(libpq) as conn:
        units = dict(conn.execute("SELECT id, units FROM d_account").fetchall())
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (worker, item)) FROM d_outbox"
        ).fetchone()
    # even workers move 1 -> 2, odd ones 2 -> 1, as many each: the balance is back where it was
    assert units == {1: START_UNITS, 2: START_UNITS}
    assert rows == distinct == WORKERS * UNITS
    print(f"{WORKERS} x {UNITS} transfers, {retried} deadlock retries")


def test_serializable_increments_that_collide_are_run_again_and_none_is_lost(
    pg: tuple[str, dict[str, str], Any], tmp_path: Path
) -> None:
    """Four processes increment one row by read-modify-write at SERIALIZABLE: colliding ones
    fail to serialize and run again; the counter ends exactly at the number of increments."""
    libpq, env, _ = pg
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("CREATE TABLE d_counter (id int PRIMARY KEY, n bigint NOT NULL)")
        conn.execute("INSERT INTO d_counter VALUES (1, 0)")
    reports = _run_workers(env, "serializable", tmp_path)
    assert [r["errors"] for r in reports] == [[]] * WORKERS
    retried = sum(r["retries"].get("serialization failure", 0) for r in reports)
    assert retried > 0, "no serialization failure happened: the test provoked nothing"
    with psycopg.connect(libpq) as conn:
        assert conn.execute("SELECT n FROM d_counter").fetchone()[0] == WORKERS * UNITS
    print(f"{WORKERS} x {UNITS} increments, {retried} serialization retries")


def test_a_unit_that_never_serializes_gives_up_after_the_bounded_attempts(
    pg: tuple[str, dict[str, str], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Every attempt loses the race to a concurrent commit: after ``attempts`` tries the
    caller gets ``Contended`` saying nothing was saved, quickly, and no change was written."""
    libpq, _, crm = pg
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("CREATE TABLE d_counter (id int PRIMARY KEY, n bigint NOT NULL)")
        conn.execute("INSERT INTO d_counter VALUES (1, 0)")
    attempts: list[int] = []
    rival = psycopg.connect(libpq, autocommit=True)

    def increment(session: Any) -> None:
        attempts.append(1)
        conn = session.connection()
        value = conn.execute(text("SELECT n FROM d_counter WHERE id = 1")).scalar_one()
        rival.execute("UPDATE d_counter SET n = n + 100 WHERE id = 1")  # commits meanwhile
        conn.execute(text("UPDATE d_counter SET n = :n WHERE id = 1"), {"n": value + 1})

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="crm.db"), pytest.raises(db.Contended) as caught:
        crm.db.run_write(increment, attempts=3, isolation="SERIALIZABLE", what="the increment")
    rival.close()
    assert len(attempts) == 3
    assert "the increment was aborted 3 times by concurrent changes (serialization failure)" in (
        str(caught.value)
    )
    assert "nothing was saved" in str(caught.value)
    assert time.monotonic() - started < 5
    retries = [r.getMessage() for r in caplog.records if "running it again" in r.getMessage()]
    assert retries == [
        "the increment: serialization failure, running it again (attempt 2 of 3)",
        "the increment: serialization failure, running it again (attempt 3 of 3)",
    ]
    with psycopg.connect(libpq) as conn:
        assert conn.execute("SELECT n FROM d_counter").fetchone()[0] == 300  # only the rival's


# --- over the web: a request chosen as the deadlock victim ------------------------------------


class Rival:
    """A transaction of the test that makes a ``PATCH /api/customers/{id}`` deadlock.

    The PATCH updates the customer, then queues a webhook delivery, whose foreign key needs a
    share lock on the endpoint row. The rival holds that row ``FOR UPDATE``, waits until the
    request is blocked on it, then updates the customer: a cycle, which the request's backend
    detects first (a second after it began to wait; the rival's own detection is set ten
    seconds away), so the request is the victim. Each ``strike`` does that once, inside a
    savepoint it rolls back, so that the request's next attempt can lock the customer again.
    """

    def __init__(self, libpq: str, endpoint_id: int) -> None:
        self.conn = psycopg.connect(libpq)
        self.conn.execute("SET deadlock_timeout = '10s'")
        self.conn.execute(
            "SELECT 1 FROM core_webhook_endpoint WHERE id = %s FOR UPDATE", (endpoint_id,)
        )
        self.monitor = psycopg.connect(libpq, autocommit=True)

    def _request_waits(self) -> bool:
        blocked = self.monitor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE 'INSERT INTO core_webhook_delivery%%'"
        ).fetchone()[0]
        return blocked > 0

    def strike(self, customer_id: int) -> None:
        """Deadlock the request's current attempt once."""
        wait_for(self._request_waits, 30, "the request blocking on the endpoint row")
        self.conn.execute("SAVEPOINT strike")
        self.conn.execute(
            "UPDATE core_customer SET source_channel = 'rival' WHERE id = %s", (customer_id,)
        )
        self.conn.execute("ROLLBACK TO SAVEPOINT strike")

    def close(self) -> None:
        """End the rival's transaction (rolled back) and its connections."""
        self.conn.rollback()
        self.conn.close()
        self.monitor.close()


@pytest.fixture
def patched(pg: tuple[str, dict[str, str], Any]) -> Iterator[dict[str, Any]]:
    """The app of ``pg``'s CRM, a customer, a webhook endpoint, and a PATCH to send."""
    from fastapi.testclient import TestClient

    from core.web.app import create_app
    from core.webhooks import service as hooks

    libpq, _, crm = pg
    with psycopg.connect(libpq, autocommit=True) as conn:
        # the request's backend looks for the deadlock after a second: by then the rival has
        # closed the cycle, however slow the machine is to notice that the request waits
        conn.execute(f"ALTER DATABASE \"{conn.info.dbname}\" SET deadlock_timeout = '1s'")
    crm.db.dispose()
    with crm.db.write() as session:
        endpoint, _ = hooks.add_endpoint(session, crm, "http://127.0.0.1:9/hook", ["*"])
        endpoint_id = endpoint.id
    headers = {"Authorization": f"Bearer {admin_token(crm)}"}
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    made = client.post("/api/customers", json={"display_name": "Chị Lan"}, headers=headers)
    yield {
        "libpq": libpq,
        "crm": crm,
        "client": client,
        "headers": headers,
        "customer": made.json()["id"],
        "endpoint": endpoint_id,
    }


def _patch_in_background(patched: dict[str, Any]) -> tuple[threading.Thread, list[Any]]:
    answers: list[Any] = []
    url = f"/api/customers/{patched['customer']}"
    body = {"version": 1, "address": "12 Lý Thái Tổ"}

    def send() -> None:
        answers.append(patched["client"].patch(url, json=body, headers=patched["headers"]))

    thread = threading.Thread(target=send)
    thread.start()
    return thread, answers


def _written(libpq: str, customer_id: int) -> tuple[int, int, tuple]:
    with psycopg.connect(libpq) as conn:
        audits = conn.execute(
            "SELECT count(*) FROM core_audit_log WHERE model = 'customer' AND action = 'update'"
            " AND record_id = %s",
            (str(customer_id),),
        ).fetchone()[0]
        deliveries = conn.execute(
            "SELECT count(*) FROM core_webhook_delivery WHERE event = 'customer.updated'"
        ).fetchone()[0]
        row = conn.execute(
            "SELECT address, version, source_channel FROM core_customer WHERE id = %s",
            (customer_id,),
        ).fetchone()
    return audits, deliveries, row


def test_a_request_chosen_as_deadlock_victim_is_run_again_and_written_once(
    patched: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    rival = Rival(patched["libpq"], patched["endpoint"])
    before = db.RETRIES["deadlock detected"]
    with caplog.at_level(logging.WARNING, logger="crm.db"):
        thread, answers = _patch_in_background(patched)
        rival.strike(patched["customer"])
        rival.close()  # the request's second attempt goes through
        thread.join(60)
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json()["address"] == "12 Lý Thái Tổ" and answers[0].json()["version"] == 2
    assert db.RETRIES["deadlock detected"] - before == 1
    assert any(
        "PATCH /api/customers/" in r.getMessage() and "deadlock detected" in r.getMessage()
        for r in caplog.records
    )
    # one update, one audit row, one webhook delivery: the victim's were rolled back
    assert _written(patched["libpq"], patched["customer"]) == (1, 1, ("12 Lý Thái Tổ", 2, None))


def test_a_request_that_keeps_deadlocking_gets_503_and_nothing_is_written(
    patched: dict[str, Any],
) -> None:
    rival = Rival(patched["libpq"], patched["endpoint"])
    before = db.RETRIES["gave up"]
    thread, answers = _patch_in_background(patched)
    for _ in range(db.WRITE_ATTEMPTS):
        rival.strike(patched["customer"])
    thread.join(60)
    rival.close()
    answer = answers[0]
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "1"
    assert "aborted 5 times by concurrent changes (deadlock detected)" in answer.json()["detail"]
    assert db.RETRIES["gave up"] - before == 1
    assert _written(patched["libpq"], patched["customer"]) == (0, 0, (None, 1, None))
