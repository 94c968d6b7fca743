"""The customer list API on a large table: first page, a page at depth 999,950, and
accent-insensitive prefix search, measured in the same run.

Run: ``.venv/bin/python bench/customer_list.py [--customers 1000000] [--db FILE]``.
The database is built once with ``crm customers import`` (pass ``--db`` to keep and reuse it).
Requests go over HTTP to one uvicorn worker on loopback, one at a time; figures are medians.

Targets: the deep page within 2x of the first page (keyset pagination; the reference is the
first page of the same endpoint); prefix search under 50 ms median.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEPTH = 999_950


def build(db: Path, customers: int) -> None:
    """Initialise ``db`` and import ``customers`` generated customers into it."""
    from core.demo import write_csv

    env = {**os.environ, "CRM_DATABASE_URL": f"sqlite:///{db}", "CRM_LOAD_PLUGINS": ""}
    crm = str(Path(sys.executable).with_name("crm"))
    subprocess.run(
        [crm, "init", "--admin-password", "Bench-pass-123", "--no-config"],
        env=env,
        cwd=db.parent,
        check=True,
        capture_output=True,
    )
    data = db.parent / "customers.csv"
    write_csv(data, customers, seed=5)
    subprocess.run(
        [crm, "customers", "import", str(data)],
        env=env,
        cwd=db.parent,
        check=True,
        capture_output=True,
    )
    data.unlink()


def token(db: Path) -> str:
    """A fresh API token of the administrator."""
    env = {**os.environ, "CRM_DATABASE_URL": f"sqlite:///{db}", "CRM_LOAD_PLUGINS": ""}
    crm = str(Path(sys.executable).with_name("crm"))
    return subprocess.run(
        [crm, "users", "token", "create", "--user", "admin@example.com", "--name", "bench-list"],
        env=env,
        cwd=db.parent,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def median_ms(client: httpx.Client, url: str, params: list[dict], repeat: int) -> float:
    """Median latency in ms of GET ``url`` over ``params`` (each ``repeat`` times)."""
    times = []
    for _ in range(repeat):
        for query in params:
            started = time.perf_counter()
            response = client.get(url, params=query)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return statistics.median(times)


def main() -> None:
    """Print first-page and deep-page latencies, their ratio, and prefix-search latency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse or keep this database")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    from core.customers.listing import _encode
    from core.normalize import search_key

    with tempfile.TemporaryDirectory() as name:
        db = args.db or Path(name) / "list.db"
        if not db.exists():
            build(db, args.customers)
        conn = sqlite3.connect(db)
        total = conn.execute("SELECT count(*) FROM core_customer").fetchone()[0]
        depth = min(DEPTH, total - 60)
        deep_id = conn.execute(
            "SELECT id FROM core_customer ORDER BY id DESC LIMIT 1 OFFSET ?", (depth - 1,)
        ).fetchone()[0]
        deep_name = conn.execute(
            "SELECT search_key, id FROM core_customer ORDER BY search_key, id LIMIT 1 OFFSET ?",
            (depth - 1,),
        ).fetchone()
        names = [
            r[0]
            for r in conn.execute(
                "SELECT display_name FROM core_customer WHERE kind = 'person' ORDER BY id LIMIT 50"
                " OFFSET 1000"
            )
        ]
        conn.close()
        prefixes = [" ".join(search_key(n).split()[:2]) for n in names]
        env = {
            **os.environ,
            "CRM_DATABASE_URL": f"sqlite:///{db}",
            "CRM_LOAD_PLUGINS": "",
            "PYTHONPATH": str(ROOT),
        }
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        secret = token(db)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "core.web.app:create_app_from_env",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=db.parent,
        )
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                timeout=30,
                headers={"Authorization": f"Bearer {secret}"},
            ) as client:
                for _ in range(100):
                    try:
                        client.get("/api/health")
                        break
                    except httpx.TransportError:
                        time.sleep(0.1)
                url = "/api/customers"
                first = median_ms(client, url, [{"limit": 50}], args.repeat)
                deep = median_ms(
                    client, url, [{"limit": 50, "cursor": _encode([deep_id])}], args.repeat
                )
                first_name = median_ms(client, url, [{"limit": 50, "sort": "name"}], args.repeat)
                deep_name_ms = median_ms(
                    client,
                    url,
                    [{"limit": 50, "sort": "name", "cursor": _encode(list(deep_name))}],
                    args.repeat,
                )
                search = median_ms(client, url, [{"limit": 50, "q": p} for p in prefixes], 2)
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(f"customers: {total:,}; page size 50; medians over {args.repeat} requests")
    print(
        f"newest first: first page {first:7.1f} ms, page at depth {depth:,} {deep:7.1f} ms,"
        f" ratio {deep / first:.2f} (target <= 2)"
    )
    print(
        f"by name:      first page {first_name:7.1f} ms, page at depth {depth:,}"
        f" {deep_name_ms:7.1f} ms, ratio {deep_name_ms / first_name:.2f} (target <= 2)"
    )
    print(
        f"prefix search ({len(prefixes)} unaccented name prefixes): median {search:.1f} ms"
        " (target < 50 ms)"
    )


if __name__ == "__main__":
    main()
