"""The server-rendered customer list page on a large table, next to the JSON list API.

First pages, pages at depth 999,950 (newest first and by name) and search, each asked of
``GET /ui/customer`` and of ``GET /api/customers`` in the same run. Search is measured twice:
50 two-word name prefixes taken from the data, as in ``customer_list.py``, and the five
commonest first words of names ("nguyen", ...), what a user types first; under each, the
figures of its prefix that finds the most customers.

Run: ``.venv/bin/python bench/ui_customer_list.py [--customers 1000000] [--db FILE]``.
The database is built once with ``crm customers import`` (pass ``--db`` to keep and reuse it).
``crm serve`` runs one worker on loopback; the page is fetched signed in as the administrator
(``POST /login`` with its CSRF token), the API with a token of the same user. Requests go one
at a time, each HTML request followed by the same API request; figures are medians.

Target: every HTML figure under 100 ms median. The reference is ``GET /api/customers`` with the
same sort, cursor and search: the same keyset query and capped count, answered as JSON.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEPTH = 999_950
PAGE = 50
PASSWORD = "Bench-pass-123"
ADMIN = "admin@example.com"
TARGET_MS = 100.0
ROW = re.compile(r'<tr data-id="(\d+)"')
NEXT = re.compile(r'<a id="next-page" href="[^"]*[?&]cursor=([^"&]+)"')


@dataclass
class Case:
    """One page asked of both: the page's and the API's query, and what it must show."""

    page: dict
    api: dict
    first_id: int | None = None  # the id of the page's first row, when known
    full: bool = True  # a full page of ``PAGE`` rows (search pages may hold fewer)


def crm(db: Path, *args: str) -> str:
    """Run ``crm *args`` on ``db`` (built-in modules only); its standard output."""
    env = {**os.environ, "CRM_DATABASE_URL": f"sqlite:///{db}", "CRM_LOAD_PLUGINS": ""}
    command = str(Path(sys.executable).with_name("crm"))
    return subprocess.run(
        [command, *args], env=env, cwd=db.parent, check=True, capture_output=True, text=True
    ).stdout.strip()


def build(db: Path, customers: int) -> None:
    """Initialise ``db`` and import ``customers`` generated customers into it."""
    from core.demo import write_csv

    crm(db, "init", "--admin-password", PASSWORD, "--no-config")
    data = db.parent / "customers.csv"
    write_csv(data, customers, seed=5)
    crm(db, "customers", "import", str(data))
    data.unlink()


def sign_in(client: httpx.Client, origin: str) -> None:
    """Sign ``client`` in as the administrator the way a browser does (CSRF cookie and field)."""
    form = client.get("/login")
    form.raise_for_status()
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if found is None or "crm_csrf" not in client.cookies:
        raise SystemExit("the login page gave no CSRF token")
    response = client.post(
        "/login",
        data={"email": ADMIN, "password": PASSWORD, "next": "/", "csrf_token": found.group(1)},
        headers={"Origin": origin},
    )
    if response.status_code != 303 or "crm_session" not in client.cookies:
        raise SystemExit(f"sign-in failed: HTTP {response.status_code}")


def check(case: Case, page: httpx.Response, api: httpx.Response) -> None:
    """Fail unless the HTML page and the API answer show the rows ``case`` expects."""
    ids = [int(i) for i in ROW.findall(page.text)]
    api_ids = [item["id"] for item in api.json()["items"]]
    expected = PAGE if case.full else len(api_ids)
    if not ids or len(ids) != expected or ids != api_ids:
        raise SystemExit(f"{page.url}: {len(ids)} rows, API {len(api_ids)}, or different rows")
    if case.first_id is not None and ids[0] != case.first_id:
        raise SystemExit(f"{page.url}: starts at {ids[0]}, expected {case.first_id}")


def timed(client: httpx.Client, url: str, params: dict) -> tuple[float, httpx.Response]:
    """One GET: its latency in ms and the response (raising on an error status)."""
    started = time.perf_counter()
    response = client.get(url, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response


def measure(
    html: httpx.Client, api: httpx.Client, cases: list[Case], repeat: int
) -> list[tuple[list[float], list[float]]]:
    """Latencies in ms of the HTML page and of the API for each of ``cases``, run ``repeat`` times.

    Each HTML request is followed by its API request, so both see the same machine state.
    """
    times: list[tuple[list[float], list[float]]] = [([], []) for _ in cases]
    for _ in range(repeat):
        for case, (page_ms, api_ms) in zip(cases, times, strict=True):
            page_time, page = timed(html, "/ui/customer", case.page)
            api_time, answer = timed(api, "/api/customers", {"limit": PAGE, **case.api})
            check(case, page, answer)
            page_ms.append(page_time)
            api_ms.append(api_time)
    return times


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    """Print HTML and API medians, their ratio, and whether each HTML figure meets 100 ms."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse or keep this database")
    parser.add_argument("--repeat", type=int, default=20, help="requests per page (medians)")
    parser.add_argument(
        "--search-passes", type=int, default=3, help="requests per search prefix (medians)"
    )
    args = parser.parse_args()
    from core.customers.listing import _encode as api_cursor
    from core.normalize import search_key
    from core.ui.data import _encode as page_cursor

    with tempfile.TemporaryDirectory() as name:
        db = args.db or Path(name) / "list.db"
        if not db.exists():
            build(db, args.customers)
        conn = sqlite3.connect(db)
        active = "FROM core_customer WHERE NOT archived"
        total = conn.execute(f"SELECT count(*) {active}").fetchone()[0]
        depth = min(DEPTH, total - 2 * PAGE)
        # The row at ``depth`` ends the page before; the measured page starts with the next.
        (deep_id,), (after_id,) = conn.execute(
            f"SELECT id {active} ORDER BY id DESC LIMIT 2 OFFSET ?", (depth - 1,)
        ).fetchall()
        (deep_key, deep_name_id), (_, after_name_id) = conn.execute(
            f"SELECT search_key, id {active} ORDER BY search_key, id LIMIT 2 OFFSET ?",
            (depth - 1,),
        ).fetchall()
        (last_of_first,) = conn.execute(
            f"SELECT id {active} ORDER BY id DESC LIMIT 1 OFFSET ?", (PAGE - 1,)
        ).fetchone()
        names = [
            r[0]
            for r in conn.execute(
                "SELECT display_name FROM core_customer WHERE kind = 'person' ORDER BY id LIMIT 50"
                " OFFSET 1000"
            )
        ]
        # What a user types first: the commonest first words of names ("nguyen", "cong", ...).
        words = [
            r[0]
            for r in conn.execute(
                "SELECT substr(search_key, 1, instr(search_key || ' ', ' ') - 1) AS word"
                f" {active} GROUP BY word ORDER BY count(*) DESC LIMIT 5"
            )
        ]
        prefixes = [" ".join(search_key(n).split()[:2]) for n in names]
        matches = {
            p: conn.execute(
                f"SELECT count(*) {active} AND search_key >= ? AND search_key < ?",
                (p, p + "\U0010ffff"),
            ).fetchone()[0]
            for p in [*prefixes, *words]
        }
        conn.close()
        by_id = [page_cursor([deep_id]), api_cursor([deep_id])]
        by_name = [page_cursor([deep_key, deep_name_id]), api_cursor([deep_key, deep_name_id])]
        one, passes = args.repeat, args.search_passes
        cases = {
            "newest first, first page": ([Case({}, {})], one),
            f"newest first, depth {depth:,}": (
                [Case({"sort": "-id", "cursor": by_id[0]}, {"cursor": by_id[1]}, after_id)],
                one,
            ),
            "by name, first page": ([Case({"sort": "display_name"}, {"sort": "name"})], one),
            f"by name, depth {depth:,}": (
                [
                    Case(
                        {"sort": "display_name", "cursor": by_name[0]},
                        {"sort": "name", "cursor": by_name[1]},
                        after_name_id,
                    )
                ],
                one,
            ),
            f"prefix search ({len(prefixes)} prefixes)": (
                [Case({"q": p}, {"q": p, "sort": "name"}, full=False) for p in prefixes],
                passes,
            ),
            f"commonest first words ({len(words)})": (
                [Case({"q": w}, {"q": w, "sort": "name"}, full=False) for w in words],
                passes,
            ),
        }

        crm(db, "users", "set-password", ADMIN, "--password", PASSWORD)
        secret = crm(db, "users", "token", "create", "--user", ADMIN, "--name", "bench-ui-list")
        port = free_port()
        origin = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "CRM_DATABASE_URL": f"sqlite:///{db}",
            "CRM_LOAD_PLUGINS": "",
            "CRM_SECRET_KEY": os.urandom(24).hex(),
            "PYTHONPATH": str(ROOT),
        }
        log = Path(name) / "server.log"
        with log.open("w") as errors:  # the child keeps its own copy of the file
            server = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("crm")),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                ],
                env=env,
                cwd=db.parent,
                stdout=subprocess.DEVNULL,  # uvicorn's access log
                stderr=errors,
            )
        figures = {}
        try:
            with (
                httpx.Client(base_url=origin, timeout=30) as html,
                httpx.Client(
                    base_url=origin, timeout=30, headers={"Authorization": f"Bearer {secret}"}
                ) as api,
            ):
                for _ in range(300):
                    try:
                        api.get("/api/health")
                        break
                    except httpx.TransportError:
                        time.sleep(0.1)
                else:
                    raise SystemExit("crm serve did not start:\n" + log.read_text())
                sign_in(html, origin)
                first = html.get("/ui/customer")
                first.raise_for_status()
                link = NEXT.search(first.text)
                if link is None or link.group(1) != page_cursor([last_of_first]):
                    raise SystemExit("the page's next-page cursor is not the one built here")
                size_kb = len(first.content) / 1024
                for label, (group, repeat) in cases.items():
                    times = measure(html, api, group, repeat)
                    figures[label] = (
                        statistics.median(t for page_ms, _ in times for t in page_ms),
                        statistics.median(t for _, api_ms in times for t in api_ms),
                    )
                    if len(group) > 1:  # a search: also its prefix matching the most customers
                        worst = max(range(len(group)), key=lambda i: matches[group[i].page["q"]])
                        text = group[worst].page["q"]
                        label = f"  q={text!r}, {matches[text]:,} found"
                        figures[label] = tuple(map(statistics.median, times[worst]))
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(
        f"customers: {total:,} active; page size {PAGE} ({size_kb:.0f} KB of HTML);"
        f" medians over {args.repeat} requests, searches over {args.search_passes} passes"
    )
    print(f"{'':36} {'HTML /ui/customer':>17} {'API /api/customers':>18} {'html/api':>9}")
    for label, (page_ms, api_ms) in figures.items():
        verdict = "met" if page_ms < TARGET_MS else "NOT met"
        print(
            f"{label:36} {page_ms:14.1f} ms {api_ms:15.1f} ms {page_ms / api_ms:8.2f}x"
            f"   target < {TARGET_MS:.0f} ms: {verdict}"
        )


if __name__ == "__main__":
    main()
