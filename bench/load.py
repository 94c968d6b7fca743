"""Load test of the main staff flows, every module enabled, at rising user counts.

Run: ``.venv/bin/python bench/load.py [--users 5 10 20] [--duration 20] [--json out.json]``

1. A fresh database: an SQLite file in a temporary folder, or the new, empty (PostgreSQL or
   SQLite) database ``--database-url`` names; ``crm init``, ``crm modules enable --all``,
   ``crm demo``, ``crm analytics refresh``.
2. Staff accounts (salespeople, managers, service agents, in the team owning the most
   customers) and API tokens, enough for the largest user count.
3. ``--servers`` ``crm serve`` processes (``--workers`` each) on free loopback ports, all on
   that database.
4. For each user count, locust headless in a subprocess (``bench/load/locustfile.py``) for
   ``--duration`` seconds; its CSV statistics and the HTTP status of every response are read
   back, and the servers' logs are searched for 5xx answers and tracebacks.

Prints requests/s, p50, p95, error rate and 5xx count per user count, and the requests of every
flow; ``--json`` writes the same figures. Exits with 1 when a 5xx answer (seen by locust or in
a server log) occurred at or below ``--target-users``. Performance is read from the figures;
nothing here is timed against a threshold.

Defaults come from the profile: ``quick`` 5, 10, 20 users x 20 s; ``long``
(``--profile long`` or ``CRM_RELIABILITY_PROFILE=long``) 10, 25, 50, 100 users x 60 s.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOAD_DIR = Path(__file__).resolve().parent / "load"
LOCUSTFILE = LOAD_DIR / "locustfile.py"
sys.path[:0] = [str(ROOT), str(LOAD_DIR)]

from staff_flows import FLOWS, flow_of  # noqa: E402

PROFILES = {"quick": ([5, 10, 20], 20.0), "long": ([10, 25, 50, 100], 60.0)}
#: Personas and their locust weights (``bench/load/locustfile.py``); ``api`` holds tokens.
PERSONAS = {"sales": ("sales", 5), "manager": ("manager", 2), "service": ("service", 2)}
API_WEIGHT = 1
PASSWORD = "Load-test-pass-123"
_5XX = re.compile(r'" (5\d\d) ')


@dataclass
class Level:
    """The figures of one user count."""

    users: int
    duration_s: float
    requests: int = 0
    failures: int = 0
    exceptions: int = 0
    rps: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    status_5xx: int = 0
    retried_gets: int = 0
    server_5xx: int = 0
    server_tracebacks: int = 0
    database_locked: int = 0
    flows: dict[str, dict[str, Any]] = field(default_factory=dict)
    top_failures: list[dict[str, Any]] = field(default_factory=list)
    exception_messages: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        """Failed requests plus exceptions raised by the simulated users."""
        return self.failures + self.exceptions

    @property
    def error_rate(self) -> float:
        """Errors per request."""
        return self.errors / self.requests if self.requests else 1.0

    @property
    def any_5xx(self) -> int:
        """5xx answers seen by locust or in the servers' logs."""
        return max(self.status_5xx, self.server_5xx)

    def as_json(self) -> dict[str, Any]:
        """The figures as plain JSON values."""
        return {
            "users": self.users,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "requests_per_s": round(self.rps, 2),
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "failures": self.failures,
            "exceptions": self.exceptions,
            "error_rate": self.error_rate,
            "status_5xx": self.status_5xx,
            "gets_retried_after_connection_reset": self.retried_gets,
            "server_log_5xx": self.server_5xx,
            "server_log_tracebacks": self.server_tracebacks,
            "server_log_database_locked": self.database_locked,
            "flows": self.flows,
            "flows_without_requests": [
                f for f in FLOWS if not self.flows.get(f, {}).get("requests")
            ],
            "top_failures": self.top_failures,
            "exception_messages": self.exception_messages,
        }


# --- setup -------------------------------------------------------------------------------------


def clean_env(database_url: str, folder: Path) -> dict[str, str]:
    """The environment of the ``crm`` commands and servers: no inherited ``CRM_*`` setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.pop("PYTHONPATH", None)
    env.update(
        CRM_DATABASE_URL=database_url,
        CRM_SECRET_KEY=secrets.token_urlsafe(40),
        CRM_BACKUP_DIR=str(folder / "backups"),
    )
    return env


def run_crm(env: dict[str, str], folder: Path, *args: str) -> str:
    """Run ``crm ARGS`` in ``folder``; its output, or exit saying what failed."""
    crm = str(Path(sys.executable).with_name("crm"))
    done = subprocess.run(
        [crm, *args], env=env, cwd=folder, capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise SystemExit(f"crm {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def prepare_database(env: dict[str, str], folder: Path, customers: int) -> dict[str, float]:
    """Initialise the database with every module and the demo data; seconds per step."""
    steps = {
        "init": ["init", "--admin-password", "Admin-pass-123", "--no-config"],
        "modules enable --all": ["modules", "enable", "--all"],
        "demo": ["demo", "--count", str(customers)],
        "analytics refresh": ["analytics", "refresh"],
    }
    seconds = {}
    for name, args in steps.items():
        started = time.perf_counter()
        run_crm(env, folder, *args)
        seconds[name] = round(time.perf_counter() - started, 1)
    return seconds


def accounts_needed(max_users: int) -> dict[str, int]:
    """Accounts per persona so that every simulated user has its own (locust spreads users
    over the classes by weight; two spare per persona cover rounding)."""
    total = sum(w for _, w in PERSONAS.values()) + API_WEIGHT
    needed = {p: math.ceil(max_users * w / total) + 2 for p, (_, w) in PERSONAS.items()}
    needed["api"] = math.ceil(max_users * API_WEIGHT / total) + 2
    return needed


def create_accounts(env: dict[str, str], needed: dict[str, int]) -> dict[str, Any]:
    """Staff users of each persona in the team owning the most customers, and API tokens."""
    from sqlalchemy import func, select

    from core import auth, users
    from core.customers.models import Customer
    from core.models import Team, User
    from core.runtime import Crm
    from core.settings import load_settings

    crm = Crm(load_settings(environ=env))
    personas: dict[str, list[str]] = {}
    try:
        with crm.db.write() as session:
            team_id = session.scalar(
                select(User.team_id)
                .join(Customer, Customer.owner_id == User.id)
                .where(User.team_id.is_not(None))
                .group_by(User.team_id)
                .order_by(func.count().desc())
                .limit(1)
            )
            team = session.get(Team, team_id) if team_id else users.add_team(session, "load")
            for persona, (role, _) in PERSONAS.items():
                personas[persona] = []
                for n in range(1, needed[persona] + 1):
                    email = f"load-{persona}-{n}@example.com"
                    user = users.create_user(
                        session, email, f"Load {persona} {n}", PASSWORD, [role], language="vi"
                    )
                    users.set_team(session, user, team)
                    personas[persona].append(email)
            personas["api"] = []
            for n in range(1, needed["api"] + 1):
                user = users.create_user(
                    session, f"load-api-{n}@example.com", f"Integration {n}", PASSWORD, ["sales"]
                )
                users.set_team(session, user, team)
                personas["api"].append(auth.create_token(session, user, "load test").secret)
    finally:
        crm.close()
    return {"password": PASSWORD, "personas": personas}


def free_port(host: str) -> int:
    """A free TCP port on ``host``."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def servers(
    env: dict[str, str], folder: Path, count: int, workers: int, host: str
) -> Iterator[list[tuple[str, Path]]]:
    """``count`` ``crm serve`` processes on free ports; their base URLs and log files."""
    import httpx

    crm = str(Path(sys.executable).with_name("crm"))
    started: list[tuple[subprocess.Popen, Any]] = []
    found: list[tuple[str, Path]] = []
    try:
        for n in range(count):
            port = free_port(host)
            log_path = folder / f"server-{n + 1}.log"
            log = log_path.open("w")
            args = [crm, "serve", "--host", host, "--port", str(port), "--workers", str(workers)]
            process = subprocess.Popen(
                args,
                env=env,
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            started.append((process, log))
            base = f"http://{host}:{port}"
            for _ in range(300):
                if process.poll() is not None:
                    raise SystemExit(f"crm serve stopped:\n{log_path.read_text()}")
                try:
                    httpx.get(f"{base}/api/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise SystemExit(f"crm serve did not answer on {base}")
            found.append((base, log_path))
        yield found
    finally:
        for process, log in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.close()


# --- one user count ----------------------------------------------------------------------------


def run_level(
    users: int,
    duration: float,
    think: tuple[float, float],
    hosts: list[str],
    logs: list[Path],
    accounts: Path,
    folder: Path,
) -> Level:
    """Run locust with ``users`` users for ``duration`` seconds; the figures it produced."""
    prefix = folder / f"users-{users}"
    status_file = folder / f"users-{users}-status.json"
    offsets = [log.stat().st_size for log in logs]
    ramp = max(1.0, duration / 10)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.pop("PYTHONPATH", None)
    env.update(
        LOAD_ACCOUNTS=str(accounts),
        LOAD_HOSTS=",".join(hosts),
        LOAD_THINK=f"{think[0]},{think[1]}",
        LOAD_STATUS=str(status_file),
    )
    args = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--users", str(users), "--spawn-rate", f"{users / ramp:.2f}",
        "--run-time", f"{duration:g}s", "--host", hosts[0], "--csv", str(prefix),
        "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    done = subprocess.run(
        args, env=env, cwd=folder, capture_output=True, text=True, timeout=duration + 300
    )
    stats_file = Path(f"{prefix}_stats.csv")
    if done.returncode not in (0, 1) or not stats_file.exists() or not status_file.exists():
        raise SystemExit(f"locust failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    level = Level(users, duration)
    read_stats(level, stats_file)
    read_status(level, json.loads(status_file.read_text()))
    read_failures(level, Path(f"{prefix}_failures.csv"), Path(f"{prefix}_exceptions.csv"))
    for log, offset in zip(logs, offsets, strict=True):
        with log.open(errors="replace") as f:
            f.seek(offset)
            text = f.read()
        level.server_5xx += len(_5XX.findall(text))
        level.server_tracebacks += text.count("Traceback (most recent call last)")
        level.database_locked += text.count("database is locked")
    return level


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_stats(level: Level, path: Path) -> None:
    """Totals, throughput and percentiles from locust's ``_stats.csv``; requests per flow."""
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                level.requests = int(row["Request Count"])
                level.failures = int(row["Failure Count"])
                level.rps = float(row["Requests/s"])
                level.p50_ms = _number(row["50%"])
                level.p95_ms = _number(row["95%"])
                continue
            flow = level.flows.setdefault(
                flow_of(row["Name"]), {"requests": 0, "failures": 0, "status": {}}
            )
            flow["requests"] += int(row["Request Count"])
            flow["failures"] += int(row["Failure Count"])


def read_status(level: Level, status: dict[str, Any]) -> None:
    """5xx answers, and HTTP statuses per flow, from the counts the locustfile wrote."""
    level.retried_gets = sum(status["retried"].values())
    for name, counts in status["by_name"].items():
        flow = level.flows.setdefault(flow_of(name), {"requests": 0, "failures": 0, "status": {}})
        merged = Counter(flow["status"])
        merged.update(counts)
        flow["status"] = dict(sorted(merged.items()))
        level.status_5xx += sum(n for code, n in counts.items() if code.startswith("5"))


def read_failures(level: Level, failures: Path, exceptions: Path) -> None:
    """The commonest failures, and exceptions raised by the simulated users."""
    if failures.exists():
        with failures.open(newline="") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: -int(r["Occurrences"]))
        level.top_failures = [
            {"name": r["Name"], "error": r["Error"][:300], "count": int(r["Occurrences"])}
            for r in rows[:10]
        ]
    if exceptions.exists():
        with exceptions.open(newline="") as f:
            rows = list(csv.DictReader(f))
        level.exceptions = sum(int(r["Count"]) for r in rows)
        level.exception_messages = [f"{r['Count']}x {r['Message'][:300]}" for r in rows[:10]]


# --- output ------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_table(levels: list[Level]) -> None:
    """The figures per user count, then the requests of every flow."""
    print(
        f"{'users':>5} {'seconds':>7} {'requests':>9} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7}"
        f" {'errors':>6} {'error rate':>10} {'5xx':>4}"
    )
    for lv in levels:
        print(
            f"{lv.users:>5} {lv.duration_s:>7g} {lv.requests:>9,} {lv.rps:>7.1f}"
            f" {_ms(lv.p50_ms):>7} {_ms(lv.p95_ms):>7} {lv.errors:>6}"
            f" {lv.error_rate * 100:>9.2f}% {lv.any_5xx:>4}"
        )
    print()
    print("requests per flow (failures in brackets when any):")
    header = "".join(f"{lv.users:>9}u" for lv in levels)
    print(f"  {'flow':<22}{header}")
    for flow in FLOWS:
        cells = []
        for lv in levels:
            figures = lv.flows.get(flow, {"requests": 0, "failures": 0})
            cell = f"{figures['requests']:,}"
            if figures["failures"]:
                cell += f"({figures['failures']})"
            cells.append(f"{cell:>10}")
        print(f"  {flow:<22}{''.join(cells)}")
    for lv in levels:
        for line in lv.top_failures:
            print(f"  {lv.users}u failure {line['count']}x {line['name']}: {line['error']}")
        for message in lv.exception_messages:
            print(f"  {lv.users}u exception {message}")
        if lv.retried_gets:
            print(f"  {lv.users}u GETs sent again after a connection reset: {lv.retried_gets}")
        if lv.server_tracebacks or lv.database_locked:
            print(
                f"  {lv.users}u server logs: {lv.server_tracebacks} tracebacks,"
                f" {lv.database_locked} 'database is locked'"
            )


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with the profile's defaults filled in."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=os.environ.get("CRM_RELIABILITY_PROFILE", "quick"),
        help="default user counts and duration (env CRM_RELIABILITY_PROFILE)",
    )
    parser.add_argument("--users", type=int, nargs="+", help="user counts, in order")
    parser.add_argument("--duration", type=float, help="seconds per user count")
    parser.add_argument(
        "--target-users",
        type=int,
        help="the target load: any 5xx at or below it fails the run (default: the largest count)",
    )
    parser.add_argument(
        "--database-url",
        help="a new, empty database to fill (default: a new SQLite file in a temporary folder)",
    )
    parser.add_argument("--servers", type=int, default=1, help="app servers (crm serve) to start")
    parser.add_argument("--workers", type=int, default=1, help="workers of each app server")
    parser.add_argument("--bind", default="127.0.0.1", help="address the app servers listen on")
    parser.add_argument("--customers", type=int, default=300, help="demo customers")
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(1.0, 3.0),
        metavar=("MIN", "MAX"),
        help="seconds a user waits between two flows",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--keep", type=Path, help="keep the database, logs and CSVs in this folder")
    args = parser.parse_args(argv)
    users, duration = PROFILES[args.profile]
    args.users = args.users or users
    args.duration = args.duration or duration
    args.target_users = args.target_users or max(args.users)
    if min(args.users) < 1 or args.servers < 1 or args.workers < 1:
        parser.error("--users, --servers and --workers must be at least 1")
    if args.database_url and not args.database_url.startswith(("postgresql", "sqlite")):
        parser.error("--database-url: a PostgreSQL or SQLite URL")
    return args


def main(argv: list[str] | None = None) -> int:
    """Prepare, run every user count, print and write the figures; the exit status."""
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="crm-load-")) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    try:
        database_url = args.database_url or f"sqlite:///{folder / 'crm.db'}"
        env = clean_env(database_url, folder)
        backend = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
        print(
            f"database: {backend}; {args.customers} demo customers; {args.servers} server(s) x"
            f" {args.workers} worker(s); think time {args.think[0]:g}-{args.think[1]:g} s",
            flush=True,
        )
        setup = prepare_database(env, folder, args.customers)
        needed = accounts_needed(max(args.users))
        accounts = create_accounts(env, needed)
        accounts_file = folder / "accounts.json"
        accounts_file.write_text(json.dumps(accounts))
        print(
            "setup seconds: "
            + ", ".join(f"{k} {v:g}" for k, v in setup.items())
            + f"; accounts: {', '.join(f'{k} {v}' for k, v in needed.items())}",
            flush=True,
        )
        levels = []
        with servers(env, folder, args.servers, args.workers, args.bind) as started:
            hosts = [base for base, _ in started]
            logs = [log for _, log in started]
            for users in args.users:
                level = run_level(
                    users, args.duration, args.think, hosts, logs, accounts_file, folder
                )
                levels.append(level)
                print(
                    f"  {users} users: {level.requests:,} requests, {level.rps:.1f}/s,"
                    f" {level.errors} errors, {level.any_5xx} 5xx",
                    flush=True,
                )
        print()
        print_table(levels)
        bad = [lv.users for lv in levels if lv.users <= args.target_users and lv.any_5xx]
        if args.json:
            result = {
                "database": backend,
                "servers": args.servers,
                "workers": args.workers,
                "customers": args.customers,
                "think_s": list(args.think),
                "target_users": args.target_users,
                "setup_s": setup,
                "levels": [lv.as_json() for lv in levels],
                "flows": list(FLOWS),
                "ok": not bad,
            }
            args.json.write_text(json.dumps(result, indent=2))
        if bad:
            print(f"\n5xx answers at {bad} users (target {args.target_users}): FAILED")
            return 1
        print(f"\nno 5xx at or below the target load ({args.target_users} users)")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
