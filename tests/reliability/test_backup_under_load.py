"""A backup taken while another process keeps writing restores to the database exactly as it
was at one moment: the backup's snapshot, on SQLite (online backup API) and PostgreSQL
(``pg_dump``).

The writer runs the product's write path in a loop (create a customer with an identity and a
tag, edit an older one, archive some) and, inside each transaction just before it commits,
records the digest of the whole database: row count and checksum of every table. A digest
taken inside the transaction is exactly the state that commit produces (SQLite lets one writer
in at a time; on PostgreSQL the writer is the only one). ``crm db backup`` runs meanwhile; the
backup is restored into a fresh database with ``crm db restore``, and its digest must be one
of the recorded ones, of a commit made while the backup ran; not "about the same".

The one row written after the snapshot on purpose is left out: the time of the last backup,
which ``crm db backup`` records once the backup is made.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.profile import pick
from tests.reliability.d_kit import (
    build_crm,
    crm_env,
    digest,
    fresh_database,
    open_crm,
    run_crm,
    sqlite_integrity,
    start_worker,
    wait_for,
)

#: Customers in the database before the load starts (the backup's bulk).
SEED = pick(4_000, 40_000)
#: The row ``crm db backup`` writes after its snapshot: when the last backup was made.
AFTER_SNAPSHOT = {"core_setting": {"key": "backup.last_at"}}


def _steps(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def _closest(state: dict[str, Any], steps: list[dict[str, Any]]) -> str:
    """What the restored database differs in from the committed state it is closest to."""

    def differences(step: dict[str, Any]) -> dict[str, Any]:
        names = set(state) | set(step["digest"])
        return {
            name: (step["digest"].get(name), state.get(name))
            for name in sorted(names)
            if state.get(name) != step["digest"].get(name)
        }

    best = min(steps, key=lambda step: len(differences(step)))
    return f"equals no committed state; closest is commit {best['step']}: {differences(best)}"


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_backup_taken_during_writes_restores_to_one_committed_state(
    kind: str, tmp_path: Path
) -> None:
    from core.customers import importer
    from core.demo import write_csv

    source_dir, restored_dir = tmp_path / "source", tmp_path / "restored"
    with fresh_database(kind, source_dir) as url, fresh_database(kind, restored_dir) as fresh:
        env = crm_env(url, source_dir, modules=())
        crm = build_crm(env, modules=())
        seed = source_dir / "seed.csv"
        write_csv(seed, SEED)
        with open(seed, encoding="utf-8", newline="") as handle:
            assert importer.import_rows(crm, handle).created == SEED
        crm.close()

        log = source_dir / "load.jsonl"
        writer = start_worker(env, "load", str(log), stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: len(_steps(log)) >= 5, 120, "the writer's first commits", 0.05)
            started = time.time()
            made = run_crm(env, "db", "backup", str(tmp_path / "under-load.bak"))
            ended = time.time()
            assert made.returncode == 0, made.stderr[-3000:]
            wait_for(
                lambda: sum(s["at"] > ended for s in _steps(log)) >= 3,
                120,
                "commits after the backup",
                0.05,
            )
        finally:
            writer.terminate()
            stderr = writer.communicate(timeout=60)[1]
        assert "Traceback" not in stderr, stderr[-3000:]

        restore_env = crm_env(fresh, restored_dir, modules=())
        restored = run_crm(restore_env, "db", "restore", str(tmp_path / "under-load.bak"), "--yes")
        assert restored.returncode == 0, restored.stderr[-3000:]
        crm = open_crm(restore_env)
        with crm.db.engine.connect() as conn:
            state = json.loads(json.dumps(digest(conn, AFTER_SNAPSHOT)))  # as the log has it

        steps = _steps(log)
        matching = [s["step"] for s in steps if s["digest"] == state]
        assert len(matching) == 1, _closest(state, steps)
        at = matching[0]
        before = max(s["step"] for s in steps if s["at"] < started)
        by_end = max(s["step"] for s in steps if s["at"] <= ended)
        # the snapshot is of a commit made while the backup ran (logged just after its commit)
        assert before <= at <= by_end + 1, (before, at, by_end)
        during = by_end - before
        assert during >= 1, "no commit while the backup ran: the load was not concurrent"

        from core import migrate
        from core.customers import service

        assert migrate.check_current(crm, []) == []
        with crm.db.write() as session:  # sequences came back too: a new row gets a new id
            service.create(session, crm, {"display_name": "Sau khi khôi phục"})
        crm.close()
        if kind == "sqlite":
            assert sqlite_integrity(fresh) == "ok"
        tables = len(state)
        rows = sum(count for count, _ in state.values())
        print(
            f"{kind}: backup of {rows} rows in {tables} tables took {ended - started:.2f} s"
            f" with {during} commits meanwhile; restored to the state of commit {at}"
        )
