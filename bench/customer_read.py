"""``GET /api/customers/{id}`` under load, against a plain sqlite3 endpoint in the same app.

Run: ``.venv/bin/python bench/customer_read.py [--customers 100000] [--seconds 10]``
(needs Debian's ``wrk``). One uvicorn worker on loopback serves both routes; ``wrk`` sends
32 connections to each in turn:

- product: ``GET /api/customers/{id}`` with a bearer token: authentication, the permission
  check, the customer with its identities and tags, JSON.
- reference: ``GET /bench/plain/{id}``, added by this script only: one ``sqlite3`` query for
  the same row, returned as JSON, no authentication.

Target: product throughput at least half the reference's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def app():
    """The product's app plus the reference route (uvicorn factory)."""
    import json

    from fastapi import Response

    from core.runtime import Crm
    from core.web.app import create_app

    crm = Crm.from_env()
    application = create_app(crm)
    path = crm.settings.database_url.split("///", 1)[1]
    local = {}

    @application.get("/bench/plain/{customer_id}")
    async def plain(customer_id: int) -> Response:
        conn = local.get("conn")
        if conn is None:
            conn = local["conn"] = sqlite3.connect(path, check_same_thread=False)
        row = conn.execute(
            "SELECT id, kind, display_name, given_name, family_name, country, version"
            " FROM core_customer WHERE id = ?",
            (customer_id,),
        ).fetchone()
        keys = ("id", "kind", "display_name", "given_name", "family_name", "country", "version")
        return Response(
            json.dumps(dict(zip(keys, row, strict=True))), media_type="application/json"
        )

    return application


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wrk(url: str, seconds: int, headers: dict[str, str]) -> float:
    """Requests per second ``wrk`` measured with 32 connections (2 threads)."""
    args = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} failed responses\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> None:
    """Print both throughputs and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    from core.demo import write_csv

    crm_bin = str(Path(sys.executable).with_name("crm"))
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        env = {
            **os.environ,
            "CRM_DATABASE_URL": f"sqlite:///{folder / 'crm.db'}",
            "CRM_LOAD_PLUGINS": "",
            "PYTHONPATH": str(ROOT),
        }
        subprocess.run(
            [crm_bin, "init", "--admin-password", "Bench-pass-123"],
            env=env,
            cwd=folder,
            check=True,
            capture_output=True,
        )
        write_csv(folder / "c.csv", args.customers, seed=3)
        subprocess.run(
            [crm_bin, "customers", "import", str(folder / "c.csv")],
            env=env,
            cwd=folder,
            check=True,
            capture_output=True,
        )
        token = subprocess.run(
            [crm_bin, "users", "token", "create", "--user", "admin@example.com", "--name", "bench"],
            env=env,
            cwd=folder,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        middle = args.customers // 2
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "bench.customer_read:app",
                "--port",
                str(port),
                "--workers",
                "1",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=ROOT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            auth = {"Authorization": f"Bearer {token}"}
            product, reference = [], []
            for _ in range(args.rounds):
                product.append(wrk(f"{base}/api/customers/{middle}", args.seconds, auth))
                reference.append(wrk(f"{base}/bench/plain/{middle}", args.seconds, {}))
        finally:
            server.terminate()
            server.wait(timeout=20)
    product.sort()
    reference.sort()
    p, r = product[len(product) // 2], reference[len(reference) // 2]
    print(
        f"customers: {args.customers:,}; wrk -c32, {args.seconds} s x {args.rounds} rounds"
        " (medians); one uvicorn worker"
    )
    print(f"product   GET /api/customers/{{id}}:  {p:>8,.0f} req/s")
    print(f"reference sqlite3 endpoint:         {r:>8,.0f} req/s")
    print(f"ratio product/reference:            {p / r:>8.2f}   (target >= 0.50)")


if __name__ == "__main__":
    main()
