"""`crm customers import`: modes, matching, idempotency, bad input, encodings; export escaping."""

import csv
import io
import json

from sqlalchemy import text

HEADER = ["external_ref", "display_name", "email", "phone", "country", "tags", "company"]


def count(crm, table="core_customer"):
    with crm.db.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def run(cli, path, *args):
    result = cli("customers", "import", str(path), "--format", "json", *args)
    return result, json.loads(result.stdout) if result.stdout.strip().startswith("{") else None


def test_import_creates_then_rerun_changes_nothing(crm, cli, write_csv):
    path = write_csv(
        [
            HEADER,
            ["C-1", "Nguyễn Văn Đức", "duc@example.com", "0912 345 678", "VN", "vip;retail", ""],
            ["C-2", "Trần Thị Lan", "lan@example.com", "+84 987 654 321", "vn", "", "Công ty ABC"],
            ["C-3", "Lê Minh", "", "", "", "", "Công ty ABC"],
        ]
    )
    result, summary = run(cli, path)
    assert result.exit_code == 0, result.output
    assert (summary["created"], summary["updated"], summary["rejected"]) == (3, 0, 0)
    assert count(crm) == 4  # and the company "Công ty ABC", created once
    assert count(crm, "core_customer_identity") == 4
    result, summary = run(cli, path)
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (0, 0, 3)
    assert count(crm) == 4


def test_rows_match_existing_customers_by_identity_and_update_them(crm, cli, write_csv):
    run(cli, write_csv([HEADER, ["", "Đức", "duc@example.com", "", "", "", ""]], "a.csv"))
    path = write_csv(
        [HEADER, ["C-9", "Nguyễn Văn Đức", "DUC@example.com", "0912345678", "VN", "vip", ""]],
        "b.csv",
    )
    _, summary = run(cli, path)
    assert (summary["created"], summary["updated"]) == (0, 1)
    listed = json.loads(cli("customers", "export", "--format", "json").stdout)
    assert len(listed) == 1
    row = listed[0]
    assert row["display_name"] == "Nguyễn Văn Đức" and row["external_ref"] == "C-9"
    assert row["phone"] == "+84912345678" and row["tags"] == "vip"


def test_abort_mode_writes_nothing_and_reports_every_bad_row(crm, cli, write_csv, tmp_path):
    path = write_csv(
        [
            HEADER,
            ["C-1", "Good", "good@example.com", "", "", "", ""],
            ["C-2", "Bad mail", "not-an-email", "", "", "", ""],
            ["C-3", "Bad phone", "", "12345", "", "", ""],
            ["C-4", "Bad country", "", "", "Vietnam", "", ""],
        ]
    )
    result, summary = run(cli, path)
    assert result.exit_code == 1
    assert summary["written"] is False and summary["created"] == 0 and summary["rejected"] == 3
    assert [(e["line"], e["field"]) for e in summary["errors"]] == [
        (3, "email"),
        (4, "phone"),
        (5, "country"),
    ]
    assert count(crm) == 0
    with open(tmp_path / "in.rejected.csv", encoding="utf-8") as handle:
        rejected = list(csv.reader(handle))
    assert rejected[0][:2] == ["line", "reason"] and rejected[1][0] == "3"
    assert rejected[1][1].startswith("line 3, email:")


def test_skip_mode_writes_good_rows_and_a_rejected_report(crm, cli, write_csv, tmp_path):
    path = write_csv(
        [
            HEADER,
            ["C-1", "Good", "good@example.com", "", "", "", ""],
            ["C-2", "Bad", "not-an-email", "", "", "", ""],
            ["C-3", "Also good", "", "0912000111", "", "", ""],
        ]
    )
    result, summary = run(cli, path, "--on-error", "skip")
    assert result.exit_code == 0
    assert (summary["created"], summary["rejected"]) == (2, 1)
    assert count(crm) == 2
    report = (tmp_path / "in.rejected.csv").read_text(encoding="utf-8")
    assert "not-an-email" in report and "line 3, email" in report


def test_dry_run_writes_nothing_but_counts(crm, cli, write_csv):
    path = write_csv([HEADER, ["C-1", "A", "a@example.com", "", "", "", ""]])
    _, summary = run(cli, path, "--dry-run")
    assert summary["created"] == 1 and summary["written"] is False
    assert count(crm) == 0


def test_conflicting_identities_in_one_row_are_rejected(crm, cli, write_csv):
    run(
        cli,
        write_csv(
            [
                HEADER,
                ["A", "A", "a@example.com", "", "", "", ""],
                ["B", "B", "b@example.com", "", "", "", ""],
            ],
            "first.csv",
        ),
    )
    path = write_csv([HEADER, ["", "AB", "a@example.com;b@example.com", "", "", "", ""]])
    _result, summary = run(cli, path)
    assert summary["rejected"] == 1
    assert "belong to different customers" in summary["errors"][0]["error"]


def test_the_same_customer_twice_in_one_file_is_applied_in_order(crm, cli, write_csv):
    path = write_csv(
        [
            HEADER,
            ["", "First", "x@example.com", "", "", "", ""],
            ["", "Second", "x@example.com", "", "", "", ""],
        ]
    )
    _, summary = run(cli, path)
    assert (summary["created"], summary["updated"]) == (1, 1)
    assert (
        json.loads(cli("customers", "export", "--format", "json").stdout)[0]["display_name"]
        == "Second"
    )


def test_header_problems_are_clear_errors(crm, cli, write_csv):
    unknown = cli("customers", "import", str(write_csv([["display_name", "Ghi chú"], ["A", "x"]])))
    assert unknown.exit_code == 1 and "unknown column(s) 'Ghi chú'" in unknown.output
    mapped = cli(
        "customers",
        "import",
        str(write_csv([["Họ tên", "Ghi chú"], ["A", "x"]], "m.csv")),
        "--map",
        "Họ tên=display_name",
        "--map",
        "Ghi chú=-",
    )
    assert mapped.exit_code == 0, mapped.output
    missing = cli("customers", "import", str(write_csv([["email"], ["a@example.com"]], "n.csv")))
    assert missing.exit_code == 1
    assert "missing column(s): display_name or given_name or family_name" in missing.output
    bad_map = cli(
        "customers", "import", str(write_csv([["x"], ["1"]], "o.csv")), "--map", "x=salary"
    )
    assert bad_map.exit_code == 1 and "unknown field 'salary'" in bad_map.output
    short = cli("customers", "import", str(write_csv([["display_name", "email"], ["A"]], "p.csv")))
    assert short.exit_code == 1 and "line 2" in short.output and "1 cells" in short.output


def test_encodings(crm, cli, write_csv, tmp_path):
    bom = write_csv([["display_name"], ["Đặng Thùy Trâm"]], "bom.csv", bom=True)
    assert cli("customers", "import", str(bom)).exit_code == 0
    latin = tmp_path / "latin.csv"
    latin.write_bytes("display_name\nJosé Müller\n".encode("latin-1"))
    result = cli("customers", "import", str(latin))
    assert result.exit_code == 1 and "not UTF-8" in result.output
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("display_name\nNguyễn\n".encode("utf-16"))
    assert cli("customers", "import", str(utf16)).exit_code == 1
    assert count(crm) == 1


def test_owner_column_and_unknown_owner(crm, cli, write_csv):
    path = write_csv(
        [["display_name", "owner"], ["A", "admin@example.com"], ["B", "ghost@example.com"]]
    )
    _result, summary = run(cli, path, "--on-error", "skip")
    assert summary["created"] == 1
    assert summary["errors"][0]["field"] == "owner"


def test_ten_thousand_rows(crm, cli, tmp_path):
    from core.demo import write_csv as demo_csv

    path = tmp_path / "ten.csv"
    demo_csv(path, 10_000, seed=7)
    result, summary = run(cli, path)
    assert result.exit_code == 0, result.output
    assert summary["created"] + summary["updated"] == 10_000 and summary["rejected"] == 0
    people = count(crm)
    assert people >= 10_000  # plus the companies persons named
    _, again = run(cli, path)
    assert again["unchanged"] + again["updated"] == 10_000 and again["created"] == 0
    assert count(crm) == people


def test_export_neutralises_formulas_and_round_trips(crm, cli, write_csv, tmp_path):
    path = write_csv(
        [
            ["display_name", "address", "phone"],
            ['=HYPERLINK("http://evil")', "@SUM(A1)", "+84912345678"],
            ["-2+3", "Phường 1", ""],
        ]
    )
    assert cli("customers", "import", str(path)).exit_code == 0
    exported = cli("customers", "export").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    by_address = {r["address"]: r for r in rows}
    assert by_address["'@SUM(A1)"]["display_name"] == '\'=HYPERLINK("http://evil")'
    assert by_address["'@SUM(A1)"]["phone"] == "'+84912345678"
    assert by_address["Phường 1"]["display_name"] == "'-2+3"
    again = tmp_path / "again.csv"
    again.write_text(exported, encoding="utf-8")
    result = cli("customers", "import", str(again), "--format", "json")
    summary = json.loads(result.stdout)
    assert summary["created"] == 0 and summary["unchanged"] + summary["updated"] == 2
    assert count(crm) == 2


def test_export_filters_and_json(crm, cli, write_csv):
    cli(
        "customers",
        "import",
        str(write_csv([["display_name", "tags", "country"], ["A", "vip", "VN"], ["B", "", "IR"]])),
    )
    vip = json.loads(cli("customers", "export", "--format", "json", "--tag", "vip").stdout)
    assert [r["display_name"] for r in vip] == ["A"]
    iran = json.loads(cli("customers", "export", "--format", "json", "--country", "IR").stdout)
    assert [r["display_name"] for r in iran] == ["B"]


def test_an_import_killed_half_way_leaves_nothing_and_a_rerun_completes(crm, cli, tmp_path):
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from core.demo import write_csv as demo_csv
    from tests.conftest import FIXTURES, ROOT

    path = tmp_path / "big.csv"
    demo_csv(path, 60_000, seed=11)
    env = {**__import__("os").environ, **cli.env, "PYTHONPATH": f"{FIXTURES}:{cli.site}:{ROOT}"}
    process = subprocess.Popen(
        [sys.executable, "-c", "import cli; cli.main()", "customers", "import", str(path)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(2)  # well into the import, before its single commit
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # it was killed, not finished
    assert count(crm) == 0
    if crm.db.dialect == "sqlite":
        checked = sqlite3.connect(tmp_path / "crm.db").execute("PRAGMA integrity_check")
        assert checked.fetchone()[0] == "ok"
    result, summary = run(cli, path)
    assert result.exit_code == 0 and summary["rejected"] == 0
    customers = count(crm)
    assert summary["created"] + summary["updated"] == 60_000 and customers >= 60_000
    _, again = run(cli, path)
    assert again["created"] == 0 and count(crm) == customers
