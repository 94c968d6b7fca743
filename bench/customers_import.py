"""Customer CSV import against plain ``sqlite3.executemany``, measured in the same run.

Run: ``.venv/bin/python bench/customers_import.py [--rows 1000000] [--runs 3]``.

- product: ``crm customers import FILE`` as a subprocess on a fresh SQLite database: CSV
  reading, validation, normalisation (names, e-mails, E.164 phones), identity matching, and
  inserting customers, identities and tags. Its peak memory (max RSS) is reported too.
- reference: the same rows already parsed into tuples, inserted into the same
  ``core_customer`` table (same schema and indexes, fresh database) with one
  ``sqlite3.executemany`` in one transaction.

Target: product rate at least one third of the reference rate; peak memory under 300 MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSERT_CUSTOMER = (
    "INSERT INTO core_customer (id, kind, display_name, given_name, family_name, company_id,"
    " address, country, language, owner_id, source_channel, external_ref, search_key,"
    " archived, created_at, updated_at, version) VALUES"
    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
PEAK_REPORTING_CRM = (
    "import atexit, sys\n"
    "def peak():\n"
    "    status = open('/proc/self/status').read()\n"
    "    print('VmHWM', status.split('VmHWM:')[1].split()[0], file=sys.stderr)\n"
    "atexit.register(peak)\n"
    "import cli\n"
    "sys.argv = ['crm', *sys.argv[1:]]\n"
    "cli.main()\n"
)
sys.path.insert(0, str(ROOT))


def fresh_database(folder: Path, name: str) -> tuple[Path, dict[str, str]]:
    """An initialised CRM database and the environment that points at it."""
    path = folder / f"{name}.db"
    env = {**os.environ, "CRM_DATABASE_URL": f"sqlite:///{path}", "CRM_LOAD_PLUGINS": ""}
    crm = str(Path(sys.executable).with_name("crm"))
    subprocess.run(
        [crm, "init", "--admin-password", "Bench-pass-123", "--no-config"],
        env=env,
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return path, env


def run_product(folder: Path, data: Path, run: int) -> tuple[float, float]:
    """Seconds ``crm customers import`` took and its peak memory in MB.

    The peak is the process's own VmHWM, printed by the process as it exits (the kernel's max
    RSS of a child would also count the moment between fork and exec, a copy of this process).
    """
    _, env = fresh_database(folder, f"product{run}")
    started = time.perf_counter()
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            PEAK_REPORTING_CRM,
            "customers",
            "import",
            str(data),
            "--format",
            "json",
        ],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=folder,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"import failed: {child.stderr}")
    summary = json.loads(child.stdout)
    assert summary["rejected"] == 0 and summary["created"] > 0, summary
    peak_kib = int(child.stderr.rsplit("VmHWM", 1)[1].split()[0])
    return seconds, peak_kib / 1024


def parsed_rows(data: Path) -> list[tuple]:
    """The CSV's rows as tuples for ``core_customer`` (parsing is not timed)."""
    from core.normalize import search_key

    now = "2026-01-01 00:00:00.000000"
    rows = []
    with open(data, encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), 1):
            rows.append(
                (
                    number,
                    row["kind"],
                    row["display_name"],
                    row["given_name"] or None,
                    row["family_name"] or None,
                    None,
                    row["address"] or None,
                    row["country"] or None,
                    row["language"] or None,
                    None,
                    row["source_channel"] or None,
                    row["external_ref"] or None,
                    search_key(row["display_name"]),
                    0,
                    now,
                    now,
                    1,
                )
            )
    return rows


def run_reference(folder: Path, rows: list[tuple], run: int) -> float:
    """Seconds one executemany of ``rows`` into core_customer took, commit included."""
    path, _ = fresh_database(folder, f"reference{run}")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        INSERT_CUSTOMER,
        rows,
    )
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def schema_floor_rows(data: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Customers, identities and tags as the import would write them (parsed untimed)."""
    from core.customers import importer
    from core.normalize import search_key

    now = "2026-01-01 00:00:00.000000"
    customers, identities, tags = [], [], []
    with importer.open_csv(data) as handle:
        reader = csv.reader(handle)
        parser = importer._Parser(importer._header(next(reader), {}), "VN", {})
        for number, raw in enumerate(reader, 1):
            row = parser.parse(number, raw)
            v = row.values
            customers.append(
                (
                    number,
                    v["kind"],
                    v["display_name"],
                    v["given_name"],
                    v["family_name"],
                    None,
                    v["address"],
                    v["country"],
                    v["language"],
                    None,
                    v["source_channel"],
                    v["external_ref"],
                    search_key(v["display_name"]),
                    0,
                    now,
                    now,
                    1,
                )
            )
            identities.extend((number, c, value, now) for c, value in row.identities)
            tags.extend((number, t) for t in row.tags)
    return customers, identities, tags


def run_schema_floor(folder: Path, rows: tuple[list, list, list], run: int) -> float:
    """Seconds three executemany calls (customers, identities, tags) took in one transaction."""
    path, _ = fresh_database(folder, f"floor{run}")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    customers, identities, tags = rows
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        INSERT_CUSTOMER,
        customers,
    )
    conn.executemany(
        "INSERT INTO core_customer_identity (customer_id, channel, value,"
        " created_at) VALUES (?, ?, ?, ?)",
        identities,
    )
    conn.executemany("INSERT INTO core_customer_tag (customer_id, tag) VALUES (?, ?)", tags)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def main() -> None:
    """Print product and reference rates (medians) and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time plain executemany of everything the import writes "
        "(customers, identities, tags): this schema's insert floor",
    )
    args = parser.parse_args()
    from core.demo import write_csv

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        data = folder / "customers.csv"
        write_csv(data, args.rows, seed=1)
        product, reference, peaks = [], [], []
        for run in range(args.runs):
            seconds, peak = run_product(folder, data, run)
            product.append(seconds)
            peaks.append(peak)
            for leftover in folder.glob("*.db*"):
                leftover.unlink()
        rows = parsed_rows(data)
        for run in range(args.runs):
            reference.append(run_reference(folder, rows, run))
            for leftover in folder.glob("*.db*"):
                leftover.unlink()
        del rows
        floor = []
        if args.floor:
            everything = schema_floor_rows(data)
            for run in range(args.runs):
                floor.append(run_schema_floor(folder, everything, run))
                for leftover in folder.glob("*.db*"):
                    leftover.unlink()
    product_rate = args.rows / statistics.median(product)
    reference_rate = args.rows / statistics.median(reference)
    ratio = product_rate / reference_rate
    print(f"rows: {args.rows:,}, runs: {args.runs} (medians)")
    print(
        f"product   crm customers import:    {product_rate:>10,.0f} rows/s"
        f"  ({statistics.median(product):.2f} s, whole command)"
    )
    print(
        f"reference sqlite3.executemany:     {reference_rate:>10,.0f} rows/s"
        f"  ({statistics.median(reference):.2f} s)"
    )
    print(f"ratio product/reference:           {ratio:>10.2f}   (target >= 0.33)")
    print(f"peak memory of the import:         {max(peaks):>10.0f} MB (target < 300 MB)")
    if floor:
        floor_rate = args.rows / statistics.median(floor)
        print(
            f"schema floor (all rows the import writes, plain executemany): {floor_rate:,.0f}"
            f" rows/s; product/floor {product_rate / floor_rate:.2f},"
            f" floor/reference {floor_rate / reference_rate:.2f}"
        )


if __name__ == "__main__":
    main()
