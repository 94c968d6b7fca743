"""Order CSV import against plain ``sqlite3.executemany``, measured in the same run.

Run: ``.venv/bin/python bench/orders_import.py [--lines 1000000] [--runs 3]``.

- product: ``crm orders import FILE`` as a subprocess (the whole command) on a fresh SQLite
  database that already holds the customers and products (loaded untimed with
  ``crm customers import`` and ``crm products import``): CSV reading, validation, grouping
  lines into orders, matching customers by external ref, products by SKU and orders by ref,
  computing amounts and totals, and inserting orders and lines. Its peak memory (the process's
  own VmHWM) is reported too.
- reference: the same orders and lines already parsed into tuples (ids, amounts and totals
  computed), inserted into the same ``operational_order`` and ``operational_order_line``
  tables (same schema, indexes and customers and products, fresh database) with one
  ``sqlite3.executemany`` each, in one transaction.

The file has ``--lines`` order lines, 1 to 9 per order (5 on average), for 3,000 customers
and 2,000 products, with VND prices and occasional discounts.

``--matched`` also times the reference with the import's own connection settings (a 64 MB
page cache and foreign keys checked), which the plain reference does without.

Target: product rate at least one quarter of the reference rate; memory that does not grow
with the file.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CUSTOMERS = 3_000
PRODUCTS = 2_000
CHANNELS = ("shop", "online", "shopee", "lazada", "tiki", "zalo", "phone")
STATUSES = ("placed", "paid", "shipped", "delivered", "delivered", "delivered", "cancelled")
CATEGORIES = ("Đồ uống", "Bánh kẹo", "Gia dụng", "Mỹ phẩm", "Điện tử", "Thời trang", "Văn phòng")
ORDER_HEADER = (
    "order_ref",
    "customer_ref",
    "placed_at",
    "sku",
    "quantity",
    "unit_price",
    "discount",
    "amount",
    "currency",
    "channel",
    "status",
)
INSERT_ORDER = (
    "INSERT INTO operational_order (id, ref, customer_id, channel, status, placed_at, currency,"
    " total_minor, cost_minor, owner_id, created_at, version)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_LINE = (
    "INSERT INTO operational_order_line (order_id, product_id, quantity, unit_price_minor,"
    " discount_minor, amount_minor) VALUES (?, ?, ?, ?, ?, ?)"
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


def write_inputs(folder: Path, lines: int, seed: int = 1) -> tuple[Path, Path, Path]:
    """Customers, products and order-lines CSV files (the orders file has ``lines`` rows)."""
    rng = random.Random(seed)
    customers = folder / "customers.csv"
    with open(customers, "w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["external_ref", "display_name", "phone"])
        for n in range(1, CUSTOMERS + 1):
            out.writerow([f"KH{n:06d}", f"Khách hàng {n}", f"09{n:08d}"])
    products = folder / "products.csv"
    prices = {}
    with open(products, "w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["sku", "name", "category", "price", "cost", "currency"])
        for n in range(1, PRODUCTS + 1):
            price = rng.choice((5, 12, 25, 49, 89, 150, 299, 590, 1290, 4990)) * 1000
            prices[f"SP{n:05d}"] = price
            out.writerow(
                [
                    f"SP{n:05d}",
                    f"Sản phẩm {n}",
                    rng.choice(CATEGORIES),
                    price,
                    price * 6 // 10,
                    "VND",
                ]
            )
    orders = folder / "orders.csv"
    _write_orders(orders, lines, rng, prices)
    return customers, products, orders


def _write_orders(path: Path, lines: int, rng: random.Random, prices: dict[str, int]) -> None:
    skus = list(prices)
    start = dt.datetime(2024, 1, 1, 8, 0)
    written = 0
    number = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(ORDER_HEADER)
        while written < lines:
            number += 1
            count = min(rng.randint(1, 9), lines - written)
            placed = start + dt.timedelta(minutes=number * 3 + rng.randint(0, 2))
            customer = f"KH{rng.randint(1, CUSTOMERS):06d}"
            channel, status = rng.choice(CHANNELS), rng.choice(STATUSES)
            for sku in rng.sample(skus, count):
                quantity = rng.choice((1, 1, 1, 2, 2, 3, 5, 10))
                price = prices[sku]
                discount = rng.choice((0, 0, 0, 0, 5000, 10000)) if price > 10000 else 0
                out.writerow(
                    [
                        f"DH{number:08d}",
                        customer,
                        placed.strftime("%Y-%m-%d %H:%M"),
                        sku,
                        quantity,
                        price,
                        discount,
                        quantity * price - discount,
                        "VND",
                        channel,
                        status,
                    ]
                )
            written += count


def crm_env(path: Path) -> dict[str, str]:
    """The environment of a ``crm`` command on the database at ``path``."""
    return {
        **os.environ,
        "CRM_DATABASE_URL": f"sqlite:///{path}",
        "CRM_LOAD_PLUGINS": "operational",
        "PYTHONPATH": str(ROOT),
    }


def crm(folder: Path, path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``crm ARGS`` on the database at ``path``; fail loudly."""
    command = str(Path(sys.executable).with_name("crm"))
    done = subprocess.run(
        [command, *args], env=crm_env(path), cwd=folder, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"crm {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done


def template_database(folder: Path, customers: Path, products: Path) -> Path:
    """An initialised database with the module enabled, the customers and the products."""
    path = folder / "template.db"
    crm(folder, path, "init", "--admin-password", "Bench-pass-123", "--no-config")
    crm(folder, path, "modules", "enable", "operational")
    crm(folder, path, "customers", "import", str(customers))
    crm(folder, path, "products", "import", str(products))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def fresh_copy(template: Path, name: str) -> Path:
    """A copy of the template database (one file: the template was checkpointed)."""
    path = template.with_name(f"{name}.db")
    shutil.copyfile(template, path)
    return path


def run_product(folder: Path, template: Path, data: Path, run: int) -> tuple[float, float]:
    """Seconds ``crm orders import`` took and its peak memory in MB."""
    path = fresh_copy(template, f"product{run}")
    started = time.perf_counter()
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            PEAK_REPORTING_CRM,
            "orders",
            "import",
            str(data),
            "--format",
            "json",
        ],
        env=crm_env(path),
        cwd=folder,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"import failed: {child.stdout[-2000:]} {child.stderr[-2000:]}")
    summary = json.loads(child.stdout)
    assert summary["rejected"] == 0 and summary["created"] > 0, summary
    peak_kib = int(child.stderr.rsplit("VmHWM", 1)[1].split()[0])
    return seconds, peak_kib / 1024


def parsed_rows(template: Path, data: Path) -> tuple[list[tuple], list[tuple]]:
    """The file's orders and lines as the tables' tuples (parsing is not timed)."""
    with sqlite3.connect(template) as conn:
        customers = dict(conn.execute("SELECT external_ref, id FROM core_customer"))
        products = dict(conn.execute("SELECT sku, id FROM operational_product"))
    now = "2026-01-01 00:00:00.000000"
    orders: list[tuple] = []
    lines: list[tuple] = []
    current: list = []
    with open(data, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if not current or current[1] != row["order_ref"]:
                placed = dt.datetime.fromisoformat(row["placed_at"]) - dt.timedelta(hours=7)
                current = [
                    len(orders) + 1,
                    row["order_ref"],
                    customers[row["customer_ref"]],
                    row["channel"],
                    row["status"],
                    placed.strftime("%Y-%m-%d %H:%M:%S.%f"),
                    "VND",
                    0,
                    None,
                    None,
                    now,
                    1,
                ]
                orders.append(current)
            amount = int(row["amount"])
            current[7] += amount
            lines.append(
                (
                    current[0],
                    products[row["sku"]],
                    int(row["quantity"]),
                    int(row["unit_price"]),
                    int(row["discount"]),
                    amount,
                )
            )
    return [tuple(o) for o in orders], lines


def run_reference(
    template: Path, rows: tuple[list[tuple], list[tuple]], run: int, matched: bool = False
) -> float:
    """Seconds the executemany of the orders and lines took, commit included.

    ``matched``: with the import's page cache and foreign key checks.
    """
    path = fresh_copy(template, f"reference{run}")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if matched:
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA foreign_keys = ON")
    orders, lines = rows
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(INSERT_ORDER, orders)
    conn.executemany(INSERT_LINE, lines)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def clean(folder: Path, prefix: str) -> None:
    """Remove the databases of finished runs."""
    for leftover in folder.glob(f"{prefix}*.db*"):
        leftover.unlink()


def main() -> None:
    """Print product and reference rates (medians), their ratio and the peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--matched",
        action="store_true",
        help="also time the reference with the import's page cache and foreign key checks",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        customers, products, data = write_inputs(folder, args.lines)
        template = template_database(folder, customers, products)
        product, peaks = [], []
        for run in range(args.runs):
            seconds, peak = run_product(folder, template, data, run)
            product.append(seconds)
            peaks.append(peak)
            clean(folder, "product")
        rows = parsed_rows(template, data)
        reference, matched = [], []
        for run in range(args.runs):
            reference.append(run_reference(template, rows, run))
            clean(folder, "reference")
            if args.matched:
                matched.append(run_reference(template, rows, run, matched=True))
                clean(folder, "reference")
        orders = len(rows[0])
        del rows
    product_rate = args.lines / statistics.median(product)
    reference_rate = args.lines / statistics.median(reference)
    ratio = product_rate / reference_rate
    print(f"order lines: {args.lines:,} in {orders:,} orders, runs: {args.runs} (medians)")
    print(
        f"product   crm orders import:       {product_rate:>10,.0f} lines/s"
        f"  ({statistics.median(product):.2f} s, whole command)"
    )
    print(
        f"reference sqlite3.executemany:     {reference_rate:>10,.0f} lines/s"
        f"  ({statistics.median(reference):.2f} s)"
    )
    print(f"ratio product/reference:           {ratio:>10.2f}   (target >= 0.25)")
    print(f"peak memory of the import:         {max(peaks):>10.0f} MB")
    if matched:
        matched_rate = args.lines / statistics.median(matched)
        print(
            f"reference with the import's cache and foreign keys: {matched_rate:,.0f} lines/s"
            f" ({statistics.median(matched):.2f} s); ratio {product_rate / matched_rate:.2f}"
        )


if __name__ == "__main__":
    main()
