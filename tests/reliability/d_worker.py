"""Worker processes of the reliability tests, run as ``python d_worker.py COMMAND ...`` with the
CRM's settings in the environment. Each prints one JSON line with what it did.

- ``write INDEX COUNT GO``: after the file ``GO`` appears, ``COUNT`` write transactions, each
  creating a customer with an e-mail identity and a tag and adding one to a shared counter row.
- ``deadlock INDEX COUNT GO``: ``COUNT`` units of work through ``Database.run_write`` that move
  one unit between two account rows, half of the workers in the opposite order, so that
  PostgreSQL picks deadlock victims; each unit also queues one outbox row.
- ``serializable INDEX COUNT GO``: ``COUNT`` SERIALIZABLE increments of one counter row
  through ``Database.run_write``; concurrent ones fail to serialize and are run again.
- ``enable-stall READY MODULES...``: enable ``MODULES``, stalling (for the test to SIGKILL the
  process) right after the migrations have created their third table, inside the transaction.
- ``load LOG``: write transactions without end (create, edit, archive customers); after each,
  the digest of the whole database as of that transaction, appended to ``LOG``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

COUNTER_KEY = "reliability.counter"


def _crm() -> Any:
    from core.runtime import Crm

    return Crm.from_env()


def _wait_for(go: str) -> None:
    while not Path(go).exists():
        time.sleep(0.005)


def _report(**values: Any) -> None:
    print(json.dumps(values), flush=True)


def write(index: str, count: str, go: str) -> None:
    """Customers and a shared counter, one write transaction each (see the module doc)."""
    from core.customers import service
    from core.models import Setting

    crm = _crm()
    crm.db.engine.connect().close()  # connect before the start, like a running server
    _wait_for(go)
    started = time.perf_counter()
    errors: list[str] = []
    done = 0
    for k in range(int(count)):
        try:
            with crm.db.write() as session:
                service.create(
                    session,
                    crm,
                    {"display_name": f"Ghi {index}-{k}"},
                    identities=[("email", f"w{index}-{k}@example.vn")],
                    tags=[f"worker{index}"],
                )
                row = session.get(Setting, COUNTER_KEY)
                row.value = row.value + 1
            done += 1
        except Exception as exc:  # reported, not raised: the test counts every failure
            errors.append(f"{type(exc).__name__}: {exc}")
    _report(
        done=done, errors=errors[:20], failed=len(errors), seconds=time.perf_counter() - started
    )


def deadlock(index: str, count: str, go: str) -> None:
    """Transfers between two rows in opposite orders (see the module doc)."""
    from sqlalchemy import text

    from core import db

    crm = _crm()
    first, second = (1, 2) if int(index) % 2 == 0 else (2, 1)

    def transfer(session: Any) -> None:
        conn = session.connection()
        conn.execute(text("UPDATE d_account SET units = units - 1 WHERE id = :id"), {"id": first})
        time.sleep(0.002)  # hold the first lock a moment: the other order takes its first now
        conn.execute(text("UPDATE d_account SET units = units + 1 WHERE id = :id"), {"id": second})
        conn.execute(
            text("INSERT INTO d_outbox (worker, item) VALUES (:w, :i)"),
            {"w": int(index), "i": item},
        )

    crm.db.engine.connect().close()
    _wait_for(go)
    before = sum(db.RETRIES.values())
    errors: list[str] = []
    for item in range(int(count)):
        try:
            # every transfer collides with the others: more attempts than a request gets
            crm.db.run_write(transfer, attempts=30, what=f"transfer {index}/{item}")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    _report(
        retries=dict(db.RETRIES),
        retried=sum(db.RETRIES.values()) - before,
        errors=errors[:20],
        failed=len(errors),
    )


def serializable(index: str, count: str, go: str) -> None:
    """SERIALIZABLE read-modify-write increments of one row (see the module doc)."""
    from sqlalchemy import text

    from core import db

    crm = _crm()

    def increment(session: Any) -> None:
        conn = session.connection()
        value = conn.execute(text("SELECT n FROM d_counter WHERE id = 1")).scalar_one()
        conn.execute(text("UPDATE d_counter SET n = :n WHERE id = 1"), {"n": value + 1})

    crm.db.engine.connect().close()
    _wait_for(go)
    errors: list[str] = []
    for _ in range(int(count)):
        try:
            crm.db.run_write(increment, isolation="SERIALIZABLE", attempts=50)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    _report(retries=dict(db.RETRIES), errors=errors[:20], failed=len(errors))


def enable_stall(ready: str, *names: str) -> None:
    """Enable modules, stalling inside the migrations' transaction (see the module doc)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from core import modules

    created: list[str] = []

    @event.listens_for(Engine, "after_cursor_execute")
    def stall(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("CREATE TABLE"):
            created.append(statement.split("(")[0].split()[-1].strip('"'))
            if len(created) == 3:
                Path(ready).write_text(json.dumps(created))
                time.sleep(3600)  # the test kills the process here

    modules.enable(_crm(), list(names))
    _report(finished=True)  # reached only if the stall never happened


def load(log: str) -> None:
    """Write transactions without end, logging each one's digest (see the module doc)."""
    from sqlalchemy import select

    from core.customers import service
    from core.customers.models import Customer
    from tests.reliability.d_kit import digest

    crm = _crm()
    skip = {"core_setting": {"key": "backup.last_at"}}
    with open(log, "a", encoding="utf-8") as out:
        step = 0
        while True:
            step += 1
            with crm.db.write() as session:
                made = service.create(
                    session,
                    crm,
                    {"display_name": f"Tải {step}", "address": f"Số {step}"},
                    identities=[("email", f"tai{step}@example.vn")],
                    tags=["load"],
                )
                if step % 3 == 0:  # edit an older customer too, as people do
                    older = session.scalars(
                        select(Customer).where(Customer.display_name == f"Tải {step - 2}")
                    ).one()
                    changed = {"address": f"Đã sửa ở bước {step}"}
                    service.update(session, crm, older, changed, older.version)
                if step % 7 == 0:
                    service.set_archived(session, crm, made, True)
                session.flush()
                state = digest(session.connection(), skip)
            out.write(json.dumps({"step": step, "at": time.time(), "digest": state}) + "\n")
            out.flush()
            time.sleep(0.005)  # a moment between transactions, as between requests


COMMANDS = {
    "write": write,
    "deadlock": deadlock,
    "serializable": serializable,
    "enable-stall": enable_stall,
    "load": load,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
