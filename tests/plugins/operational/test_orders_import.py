"""`crm orders import` and `crm products import`: modes, matching, idempotency, bad input."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from sqlalchemy import select, text

from core import csvimport, hookimpl
from core.customers import service as customers
from core.models import AuditLog
from plugins.operational import importer
from plugins.operational.models import Order, OrderLine, Product

HEADER = [
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
]
ROWS = [
    ["DH-1", "KH-1", "2026-01-15 10:30", "CF-1", "2", "45000", "", "", "", "shop", "paid"],
    ["DH-1", "KH-1", "2026-01-15 10:30", "CUP", "1", "120000", "20000", "100000", "", "shop", ""],
    ["DH-2", "KH-2", "2026-01-16", "", "", "", "", "350000", "", "online", "delivered"],
    ["DH-3", "KH-1", "2026-01-17T08:00:00+07:00", "TEA", "3", "12.50", "", "", "USD", "", ""],
]


@pytest.fixture
def write_csv(tmp_path):
    """Write rows (lists) to a CSV file and return its path."""

    def writer(rows: list[list[str]], name: str = "orders.csv", bom: bool = False) -> Path:
        path = tmp_path / name
        with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
            csv.writer(handle).writerows(rows)
        return path

    return writer


@pytest.fixture
def run(cli, ops_crm):
    """``run(kind, path, *args)``: ``crm <kind> import`` with JSON output and the summary."""

    def invoke(kind: str, path: Path, *args: str):
        result = cli(
            kind, "import", str(path), "--format", "json", *args, CRM_LOAD_PLUGINS="operational"
        )
        stdout = result.stdout.strip()
        return result, json.loads(stdout) if stdout.startswith("{") else None

    return invoke


def count(crm, table: str) -> int:
    with crm.db.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def totals(crm) -> dict[str, tuple]:
    with crm.db.session() as session:
        return {
            o.ref: (o.customer_id, o.currency, o.total_minor, o.status, o.channel)
            for o in session.scalars(select(Order))
        }


def test_import_creates_orders_then_a_rerun_changes_nothing(ops_crm, run, write_csv):
    path = write_csv([HEADER, *ROWS])
    result, summary = run("orders", path, "--create-customers")
    assert result.exit_code == 0, result.output
    assert (summary["created"], summary["lines"], summary["rejected"]) == (3, 3, 0)
    assert (summary["customers_created"], summary["products_created"]) == (2, 3)
    found = totals(ops_crm)
    assert found["DH-1"][1:] == ("VND", 2 * 45_000 + 100_000, "paid", "shop")
    assert found["DH-2"][1:] == ("VND", 350_000, "delivered", "online")
    assert found["DH-3"][1:3] == ("USD", 3750)  # 3 x 12.50 USD in cents
    assert found["DH-1"][0] == found["DH-3"][0] != found["DH-2"][0]
    with ops_crm.db.session() as session:
        assert session.scalar(select(Product.price_minor).where(Product.sku == "TEA")) == 1250
        placed = session.scalar(select(Order.placed_at).where(Order.ref == "DH-1"))
    assert placed.isoformat() == "2026-01-15T03:30:00+00:00"  # read in Asia/Ho_Chi_Minh
    result, again = run("orders", path, "--create-customers")
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
    assert (again["customers_created"], again["products_created"], again["lines"]) == (0, 0, 0)
    assert count(ops_crm, "operational_order") == 3
    assert count(ops_crm, "operational_order_line") == 3
    assert count(ops_crm, "core_customer") == 2
    with ops_crm.db.session() as session:
        audit = session.scalars(
            select(AuditLog).where(AuditLog.action == "import").order_by(AuditLog.id)
        ).all()
    assert [a.model for a in audit] == ["operational.order", "operational.order"]
    assert audit[0].after["created"] == 3 and audit[0].detail == "import from orders.csv"


def test_a_changed_order_is_updated_and_its_lines_replaced(ops_crm, run, write_csv):
    run("orders", write_csv([HEADER, *ROWS]), "--create-customers")
    changed = [list(r) for r in ROWS]
    changed[0][10] = "shipped"  # DH-1's status
    changed[1][4], changed[1][7] = "2", "220000"  # DH-1's second line
    _, summary = run("orders", write_csv([HEADER, *changed], "changed.csv"))
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (0, 1, 2)
    with ops_crm.db.session() as session:
        order = session.scalar(select(Order).where(Order.ref == "DH-1"))
        amounts = session.scalars(
            select(OrderLine.amount_minor).where(OrderLine.order_id == order.id)
        ).all()
    assert (order.status, order.total_minor, order.version) == ("shipped", 310_000, 2)
    assert sorted(amounts) == [90_000, 220_000]
    assert count(ops_crm, "operational_order_line") == 3


def test_customers_are_matched_by_external_ref_and_by_phone(ops_crm, run, write_csv):
    with ops_crm.db.write() as session:
        lan = customers.create(session, ops_crm, {"display_name": "Lan", "external_ref": "KH-1"}).id
        minh = customers.create(
            session, ops_crm, {"display_name": "Minh"}, [("phone", "+84 912 345 678")]
        ).id
    path = write_csv(
        [
            ["order_ref", "customer_ref", "phone", "placed_at", "amount"],
            ["A", "KH-1", "", "2026-02-01", "1000"],
            ["B", "", "0912 345 678", "2026-02-01", "2000"],
            ["C", "", "0912.345.678", "2026-02-02", "3000"],
        ]
    )
    result, summary = run("orders", path)
    assert result.exit_code == 0, result.output
    assert summary["created"] == 3 and summary["customers_created"] == 0
    found = totals(ops_crm)
    assert (found["A"][0], found["B"][0], found["C"][0]) == (lan, minh, minh)


def test_unknown_customers_are_rejected_unless_created(ops_crm, run, write_csv):
    path = write_csv(
        [
            ["order_ref", "customer_ref", "email", "customer_name", "placed_at", "amount"],
            ["A", "KH-9", "", "Nguyễn Văn Đức", "2026-02-01", "1000"],
            ["B", "", "Duc@Example.com", "", "2026-02-01", "2000"],
            ["C", "KH-9", "", "", "2026-02-02", "3000"],
            ["D", "", "duc@example.com", "", "2026-02-02", "4000"],
        ]
    )
    result, summary = run("orders", path)
    assert result.exit_code == 1 and summary["written"] is False
    assert summary["errors"][0] == {
        "line": 2,
        "field": "customer_ref",
        "error": "no customer with external ref 'KH-9'; pass --create-customers to create it",
    }
    assert count(ops_crm, "operational_order") == 0
    result, summary = run("orders", path, "--create-customers")
    assert result.exit_code == 0, result.output
    assert (summary["created"], summary["customers_created"]) == (4, 2)
    with ops_crm.db.session() as session:
        names = session.execute(
            text("SELECT display_name, external_ref FROM core_customer ORDER BY id")
        ).all()
        email = session.execute(text("SELECT value FROM core_customer_identity")).scalar_one()
    assert [tuple(n) for n in names] == [("Nguyễn Văn Đức", "KH-9"), ("duc@example.com", None)]
    assert email == "duc@example.com"
    found = totals(ops_crm)
    assert found["A"][0] == found["C"][0] != found["B"][0] == found["D"][0]
    _, again = run("orders", path, "--create-customers")
    assert (again["unchanged"], again["customers_created"]) == (4, 0)


def test_rows_naming_two_different_customers_are_rejected(ops_crm, run, write_csv):
    with ops_crm.db.write() as session:
        customers.create(session, ops_crm, {"display_name": "Lan", "external_ref": "KH-1"})
        customers.create(session, ops_crm, {"display_name": "Minh"}, [("email", "m@example.com")])
    path = write_csv(
        [
            ["order_ref", "customer_ref", "email", "placed_at", "amount"],
            ["A", "KH-1", "m@example.com", "2026-02-01", "1000"],
        ]
    )
    _, summary = run("orders", path, "--on-error", "skip")
    assert summary["rejected"] == 1
    assert "point to different customers" in summary["errors"][0]["error"]


def test_dry_run_counts_everything_and_writes_nothing(ops_crm, run, write_csv):
    _, summary = run("orders", write_csv([HEADER, *ROWS]), "--create-customers", "--dry-run")
    assert (summary["created"], summary["lines"], summary["written"]) == (3, 3, False)
    assert summary["dry_run"] is True
    for table in ("operational_order", "operational_order_line", "operational_product"):
        assert count(ops_crm, table) == 0
    assert count(ops_crm, "core_customer") == 0


def test_abort_writes_nothing_and_names_line_and_field(ops_crm, run, write_csv, tmp_path):
    bad = [
        ["DH-4", "KH-1", "15/01/2026", "CF-1", "1", "45000", "", "", "", "", ""],
        ["DH-5", "KH-1", "2026-01-15", "CF-1", "1.5", "45000", "", "", "", "", ""],
        ["DH-6", "KH-1", "2026-01-15", "CF-1", "1", "45,000.50", "", "", "", "", ""],
        ["DH-7", "KH-1", "2026-01-15", "CF-1", "1", "45000", "", "", "", "", "lost"],
    ]
    result, summary = run("orders", write_csv([HEADER, *ROWS, *bad]), "--create-customers")
    assert result.exit_code == 1
    assert "Nothing was written" in result.stderr
    assert summary["written"] is False and summary["created"] == 0
    assert [(e["line"], e["field"]) for e in summary["errors"]] == [
        (6, "placed_at"),
        (7, "quantity"),
        (8, "unit_price"),
        (9, "status"),
    ]
    assert "15/01/2026" in summary["errors"][0]["error"]
    assert "more decimals than VND allows" in summary["errors"][2]["error"]
    assert count(ops_crm, "operational_order") == 0
    assert count(ops_crm, "operational_product") == 0
    with open(tmp_path / "orders.rejected.csv", encoding="utf-8") as handle:
        rejected = list(csv.reader(handle))
    assert rejected[0] == ["line", "reason", *HEADER]
    assert rejected[1][:2] == ["6", rejected[1][1]] and rejected[1][1].startswith(
        "line 6, placed_at"
    )


def test_skip_writes_good_orders_and_a_rejected_file_to_fix(ops_crm, run, write_csv, tmp_path):
    rows = [
        *ROWS,
        ["DH-8", "KH-1", "2026-01-18", "CF-1", "1", "45000", "", "", "", "", ""],
        ["DH-8", "KH-1", "2026-01-18", "CUP", "x", "120000", "", "", "", "", ""],
        ["DH-9", "KH-2", "2026-01-19", "CF-1", "1", "45000", "", "40000", "", "", ""],
    ]
    result, summary = run(
        "orders", write_csv([HEADER, *rows]), "--create-customers", "--on-error", "skip"
    )
    assert result.exit_code == 0, result.output
    assert (summary["created"], summary["rejected"]) == (3, 3)
    assert set(totals(ops_crm)) == {"DH-1", "DH-2", "DH-3"}  # DH-8 is written whole or not at all
    with open(tmp_path / "orders.rejected.csv", encoding="utf-8") as handle:
        rejected = list(csv.reader(handle))
    reasons = {int(r[0]): r[1] for r in rejected[1:]}
    assert reasons[6].startswith("line 6: not written with its order DH-8 (line 7:")
    assert reasons[7].startswith("line 7, quantity:")
    assert reasons[8].startswith("line 8, amount: amount 40000 differs")
    fixed = [r[2:] for r in rejected[1:]]
    fixed[1][4] = "1"
    fixed[2][7] = ""
    result, summary = run("orders", write_csv([HEADER, *fixed], "fixed.csv"))
    assert (summary["created"], summary["rejected"]) == (2, 0)
    assert totals(ops_crm)["DH-8"][2] == 165_000


def test_products_are_created_on_first_sight_unless_told_not_to(ops_crm, run, write_csv):
    path = write_csv([HEADER, *ROWS])
    _, summary = run(
        "orders", path, "--create-customers", "--no-create-products", "--on-error", "skip"
    )
    assert summary["rejected"] == 3 and summary["created"] == 1  # only DH-2 has no lines
    error = summary["errors"][0]
    assert (error["line"], error["field"]) == (2, "sku")
    assert "no product with SKU 'CF-1'" in error["error"] and "--create-products" in error["error"]
    assert count(ops_crm, "operational_product") == 0


def test_orders_of_a_ref_must_follow_each_other(ops_crm, run, write_csv):
    rows = [ROWS[0], ROWS[2], ROWS[1]]
    _, summary = run(
        "orders", write_csv([HEADER, *rows]), "--create-customers", "--on-error", "skip"
    )
    assert summary["created"] == 2 and summary["rejected"] == 1
    assert summary["errors"][0]["line"] == 4
    assert "must follow each other" in summary["errors"][0]["error"]


def test_header_problems_are_clear_errors(ops_crm, run, write_csv, cli):
    unknown, _ = run("orders", write_csv([[*HEADER, "Ghi chú"], [*ROWS[0], "x"]]))
    assert unknown.exit_code == 1
    assert "unknown column(s) 'Ghi chú'; map them with --map COLUMN=field" in unknown.stderr
    mapped, summary = run(
        "orders",
        write_csv(
            [
                ["Mã đơn", "Khách", "Ngày", "Tổng", "Ghi chú"],
                ["X1", "KH-1", "2026-01-01", "99000", "x"],
            ],
            "m.csv",
        ),
        "--map",
        "Mã đơn=order_ref",
        "--map",
        "Khách=customer_ref",
        "--map",
        "Ngày=placed_at",
        "--map",
        "Tổng=amount",
        "--map",
        "Ghi chú=-",
        "--create-customers",
    )
    assert mapped.exit_code == 0, mapped.output
    assert summary["created"] == 1
    missing, _ = run("orders", write_csv([["order_ref", "sku"], ["A", "B"]], "n.csv"))
    assert missing.exit_code == 1
    assert "missing column(s): customer_ref or email or phone, placed_at" in missing.stderr
    bad_map, _ = run("orders", write_csv([["x"], ["1"]], "o.csv"), "--map", "x=salary")
    assert bad_map.exit_code == 1 and "unknown field 'salary'" in bad_map.stderr
    empty, _ = run("orders", write_csv([], "e.csv"))
    assert empty.exit_code == 1 and "the file is empty" in empty.stderr
    short, summary = run("orders", write_csv([HEADER, ROWS[0][:5]], "s.csv"), "--create-customers")
    assert short.exit_code == 1 and summary["errors"][0]["error"] == (
        "has 5 cells, the header has 11"
    )


def test_encodings(ops_crm, run, write_csv, tmp_path):
    bom = write_csv([HEADER, ROWS[2]], "bom.csv", bom=True)
    result, summary = run("orders", bom, "--create-customers")
    assert result.exit_code == 0 and summary["created"] == 1
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        (
            "order_ref,customer_ref,customer_name,placed_at,amount\n"
            "L1,KH-5,José Müller,2026-01-01,5\n"
        ).encode("latin-1")
    )
    result, _ = run("orders", latin, "--create-customers")
    assert result.exit_code == 1 and "not UTF-8" in result.stderr and "line 2" in result.stderr
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(",".join(HEADER).encode("utf-16"))
    assert run("orders", utf16)[0].exit_code == 1
    assert count(ops_crm, "operational_order") == 1


def test_notify_calls_order_placed_for_each_created_order(ops_crm, write_csv, monkeypatch):
    seen = []

    class Listener:
        @hookimpl
        def order_placed(self, crm, order):
            seen.append(order)

    ops_crm.registry.pm.register(Listener(), name="listener")
    active = type(ops_crm).active
    monkeypatch.setattr(ops_crm, "active", lambda: [*active(ops_crm), "listener"])
    path = write_csv([HEADER, *ROWS])
    with csvimport.open_csv(path) as handle:
        quiet = importer.import_orders(ops_crm, handle, create_customers=True)
    assert quiet.created == 3 and seen == []  # imports are silent by default
    changed = [list(r) for r in ROWS]
    for row in changed:
        row[0] += "-b"
    with csvimport.open_csv(write_csv([HEADER, *changed], "b.csv")) as handle:
        loud = importer.import_orders(ops_crm, handle, notify=True)
    assert loud.notified == 3
    assert [o["ref"] for o in seen] == ["DH-1-b", "DH-2-b", "DH-3-b"]
    first = seen[0]
    assert first["total_minor"] == 190_000 and first["currency"] == "VND"
    assert [(x["sku"], x["quantity"], x["amount_minor"]) for x in first["lines"]] == [
        ("CF-1", 2, 90_000),
        ("CUP", 1, 100_000),
    ]
    assert seen[1]["lines"] == []
    with csvimport.open_csv(write_csv([HEADER, *changed], "b.csv")) as handle:
        importer.import_orders(ops_crm, handle, notify=True, dry_run=True)
    assert len(seen) == 3  # nothing created, nothing notified


def test_ten_thousand_rows(ops_crm, run, tmp_path):
    rng = random.Random(7)
    path = tmp_path / "ten.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER)
        lines = order = 0
        while lines < 10_000:
            order += 1
            customer = f"KH{rng.randint(1, 300):04d}"
            placed = f"2026-01-{order % 28 + 1:02d} 09:{order % 60:02d}"
            for _ in range(min(rng.randint(1, 8), 10_000 - lines)):
                price = rng.choice((15_000, 45_000, 120_000, 2_490_000))
                sku, quantity = f"SP{rng.randint(1, 200)}", rng.randint(1, 3)
                out.writerow(
                    [f"DH{order:06d}", customer, placed, sku, quantity, price, "", "", "", "", ""]
                )
                lines += 1
    result, summary = run("orders", path, "--create-customers")
    assert result.exit_code == 0, result.output
    assert summary["lines"] == 10_000 and summary["created"] == order
    assert summary["rejected"] == 0 and summary["customers_created"] <= 300
    _, again = run("orders", path, "--create-customers")
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, order)
    assert count(ops_crm, "operational_order_line") == 10_000


# --- products --------------------------------------------------------------------------------

PRODUCTS = [
    ["sku", "name", "category", "price", "cost", "currency", "active", "upgrade_to"],
    ["PHONE-A", "Phone A", "Phones", "5990000", "4200000", "", "", "PHONE-B"],
    ["PHONE-B", "Phone B", "Phones", "8990000", "", "", "yes", ""],
    ["CASE", "Ốp lưng", "Accessories", "12.99", "3.5", "USD", "no", ""],
]


def test_products_import_creates_updates_and_links_upgrades(ops_crm, run, write_csv):
    path = write_csv(PRODUCTS, "products.csv")
    result, summary = run("products", path)
    assert result.exit_code == 0, result.output
    assert (summary["created"], summary["updated"], summary["rejected"]) == (3, 0, 0)
    with ops_crm.db.session() as session:
        stored = {p.sku: p for p in session.scalars(select(Product))}
    assert stored["PHONE-A"].upgrade_to_id == stored["PHONE-B"].id  # a forward reference
    assert (stored["PHONE-A"].price_minor, stored["PHONE-A"].cost_minor) == (5_990_000, 4_200_000)
    assert (stored["CASE"].currency, stored["CASE"].price_minor, stored["CASE"].cost_minor) == (
        "USD",
        1299,
        350,
    )
    assert stored["CASE"].active is False and stored["PHONE-B"].active is True
    _, again = run("products", path)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
    update = write_csv(
        [["sku", "price", "upgrade_to"], ["CASE", "10.99", ""], ["PHONE-B", "", "PHONE-A"]],
        "update.csv",
    )
    _, changed = run("products", update)
    assert (changed["updated"], changed["unchanged"]) == (2, 0)
    with ops_crm.db.session() as session:
        case = session.scalar(select(Product).where(Product.sku == "CASE"))
    assert (case.price_minor, case.currency, case.name, case.version) == (1099, "USD", "Ốp lưng", 2)


def test_products_import_rejects_bad_rows(ops_crm, run, write_csv):
    path = write_csv(
        [
            PRODUCTS[0],
            ["NEW", "", "", "1000", "", "", "", ""],
            ["BAD-PRICE", "X", "", "12,5.0.1", "", "", "", ""],
            ["SELF", "Self", "", "1", "", "", "", "SELF"],
            ["FLAG", "Flag", "", "1", "", "", "maybe", ""],
            ["ORPHAN", "Orphan", "", "1", "", "", "", "NOWHERE"],
            ["OK", "Fine", "", "1", "", "", "", ""],
        ],
        "bad.csv",
    )
    result, summary = run("products", path, "--on-error", "skip")
    assert result.exit_code == 0
    assert sorted((e["line"], e["field"]) for e in summary["errors"]) == [
        (2, "name"),
        (3, "price"),
        (4, "upgrade_to"),
        (5, "active"),
        (6, "upgrade_to"),
    ]
    with ops_crm.db.session() as session:
        skus = set(session.scalars(select(Product.sku)))
    assert skus == {"ORPHAN", "OK"}  # ORPHAN imported without its upgrade, as its reason says
    result, _ = run("products", path)
    assert result.exit_code == 1
