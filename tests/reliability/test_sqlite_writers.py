"""Several processes writing one SQLite database at once finish without "database is locked".

The product opens SQLite in WAL mode with a busy timeout and begins every write transaction
with ``BEGIN IMMEDIATE`` (``core.db``): writers queue for the lock at the start of a
transaction instead of failing half-way when a read lock cannot be upgraded. Eight processes
each run their write transactions through the product's write path (``Database.write`` and the
customer service): every transaction must commit, the counts must be exact, and a counter row
that every transaction reads and increments must have lost no update.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from sqlalchemy import func, select

from tests.profile import pick
from tests.reliability.d_kit import build_crm, crm_env, sqlite_integrity, start_worker
from tests.reliability.d_worker import COUNTER_KEY

PROCESSES = 8
#: Write transactions per process: the issue's 8 x 500 runs in the quick profile already.
TRANSACTIONS = pick(500, 2000)


def test_eight_processes_write_at_once_without_database_is_locked(tmp_path: Path) -> None:
    from core.customers.models import Customer, CustomerIdentity, CustomerTag
    from core.models import Setting

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    env = crm_env(url, tmp_path, modules=())
    crm = build_crm(env, modules=())
    with crm.db.write() as session:
        session.add(Setting(key=COUNTER_KEY, value=0))
    go = tmp_path / "go"
    workers = [
        start_worker(
            env,
            "write",
            str(index),
            str(TRANSACTIONS),
            str(go),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(PROCESSES)
    ]
    time.sleep(pick(3, 5))  # every worker has imported the product and connected
    started = time.perf_counter()
    go.touch()
    outputs = [worker.communicate(timeout=600) for worker in workers]
    seconds = time.perf_counter() - started
    reports = []
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert "database is locked" not in stderr + stdout
        assert worker.returncode == 0, stderr[-2000:]
        reports.append(json.loads(stdout.strip().splitlines()[-1]))
    assert [r["errors"] for r in reports] == [[]] * PROCESSES
    assert [r["done"] for r in reports] == [TRANSACTIONS] * PROCESSES
    total = PROCESSES * TRANSACTIONS
    with crm.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == total
        assert session.scalar(select(func.count()).select_from(CustomerIdentity)) == total
        tags = session.execute(
            select(CustomerTag.tag, func.count()).group_by(CustomerTag.tag)
        ).all()
        assert dict(tags) == {f"worker{i}": TRANSACTIONS for i in range(PROCESSES)}
        assert session.get(Setting, COUNTER_KEY).value == total
    crm.close()
    assert sqlite_integrity(url) == "ok"
    print(f"{PROCESSES} x {TRANSACTIONS} write transactions in {seconds:.1f} s")
