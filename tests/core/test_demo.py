"""The demo customer generator: reproducible, unique keys, a realistic mix, valid phones, CSV."""

from __future__ import annotations

import csv
import re
import tracemalloc
import unicodedata
from collections import Counter

import phonenumbers
import pytest

from core.demo import CSV_COLUMNS, MAX_NUMBER, customer_rows, write_csv

SAMPLE = 20_000
TAGS = {"vip", "wholesale", "retail", "newsletter", "event-2026", "zalo-oa", "loyalty", "b2b"}
SOURCES = {"shop", "phone", "zalo", "facebook", "email", "web", "referral", "event"}
COUNTRY_CODES = {"VN": 84, "IR": 98, "US": 1, "GB": 44, "DE": 49, "FR": 33, "CN": 86}
EMAIL_RE = re.compile(r"^[a-z0-9][a-z0-9._]*@[a-z0-9-]+(\.[a-z0-9-]+)+$")
PERSIAN_LETTERS = re.compile(r"^[\u0600-\u06ff\u200c ()]+$")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return list(customer_rows(SAMPLE))


def _share(rows: list[dict[str, str]], predicate) -> float:
    return sum(1 for row in rows if predicate(row)) / len(rows)


def _e164(phone: str) -> str:
    return phonenumbers.format_number(
        phonenumbers.parse(phone, "VN"), phonenumbers.PhoneNumberFormat.E164
    )


def test_rows_have_exactly_the_csv_columns_and_only_strings(rows):
    assert len(rows) == SAMPLE
    for row in rows:
        assert tuple(row) == CSV_COLUMNS
        assert all(isinstance(value, str) for value in row.values())
    assert all(unicodedata.is_normalized("NFC", value) for row in rows for value in row.values())


def test_same_seed_gives_the_same_rows_and_another_seed_others(rows):
    assert list(customer_rows(SAMPLE)) == rows
    assert list(customer_rows(500, seed=42)) == rows[:500]
    other = list(customer_rows(500, seed=43))
    assert other != rows[:500]
    assert [row["external_ref"] for row in other] == [row["external_ref"] for row in rows[:500]]
    differing = sum(
        a["display_name"] != b["display_name"] for a, b in zip(other, rows, strict=False)
    )
    assert differing > 400


def test_start_shifts_the_running_number():
    later = list(customer_rows(3, start=1001))
    assert [row["external_ref"] for row in later] == [
        "CUST-0001001",
        "CUST-0001002",
        "CUST-0001003",
    ]
    assert all("1001" in row["email"] for row in later[:1] if row["email"])


def test_refs_emails_phones_and_handles_are_unique_over_50000_rows():
    refs, emails, phones, handles = [], [], [], []
    for row in customer_rows(50_000, seed=7):
        refs.append(row["external_ref"])
        if row["email"]:
            emails.append(row["email"])
        if row["phone"]:
            phones.append(_e164(row["phone"]))
        handles += [f"zalo:{row['zalo']}"] if row["zalo"] else []
        handles += [f"facebook:{row['facebook']}"] if row["facebook"] else []
    assert refs[0] == "CUST-0000001" and refs[-1] == "CUST-0050000"
    assert len(set(refs)) == len(refs) == 50_000
    assert len(set(emails)) == len(emails) > 40_000
    assert len(set(phones)) == len(phones) > 38_000
    assert len(set(handles)) == len(handles) > 12_000


def test_phone_digits_never_repeat_within_a_run_of_separate_batches():
    first = {_e164(r["phone"]) for r in customer_rows(5_000, seed=1) if r["phone"]}
    second = {_e164(r["phone"]) for r in customer_rows(5_000, seed=1, start=5_001) if r["phone"]}
    assert not first & second


def test_mix_of_kinds_is_roughly_as_specified(rows):
    def kind(row: dict[str, str]) -> str:
        if row["kind"] == "company":
            return "company"
        return {"vi": "vietnamese", "fa": "persian", "en": "international"}[row["language"]]

    shares = {name: count / SAMPLE for name, count in Counter(map(kind, rows)).items()}
    assert shares["vietnamese"] == pytest.approx(0.70, abs=0.02)
    assert shares["persian"] == pytest.approx(0.10, abs=0.015)
    assert shares["international"] == pytest.approx(0.08, abs=0.015)
    assert shares["company"] == pytest.approx(0.12, abs=0.015)


def test_contact_details_are_present_in_the_specified_shares(rows):
    persons = [row for row in rows if row["kind"] == "person"]
    vietnamese = [row for row in persons if row["language"] == "vi"]
    assert _share(rows, lambda r: r["email"]) == pytest.approx(0.85, abs=0.02)
    assert _share(rows, lambda r: r["phone"]) == pytest.approx(0.80, abs=0.02)
    assert _share(rows, lambda r: r["facebook"]) == pytest.approx(0.15, abs=0.02)
    assert _share(vietnamese, lambda r: r["zalo"]) == pytest.approx(0.20, abs=0.02)
    assert _share(persons, lambda r: r["company"]) == pytest.approx(0.30, abs=0.02)
    assert all(re.fullmatch(r"[1-9][0-9]{17}", row["zalo"]) for row in rows if row["zalo"])
    assert all(re.fullmatch(r"[a-z0-9.]+", row["facebook"]) for row in rows if row["facebook"])


def test_tags_sources_countries_and_languages_come_from_known_lists(rows):
    counts = Counter()
    for row in rows:
        tags = row["tags"].split(";") if row["tags"] else []
        assert len(tags) <= 3 and len(set(tags)) == len(tags)
        assert set(tags) <= TAGS
        counts[len(tags)] += 1
        assert row["source_channel"] in SOURCES
        assert row["country"] in COUNTRY_CODES
        assert row["language"] in {"vi", "fa", "en"}
        assert row["kind"] in {"person", "company"}
    assert all(counts[size] > SAMPLE * 0.03 for size in range(4))
    assert set(Counter(row["source_channel"] for row in rows)) == SOURCES


def test_vietnamese_persons_are_family_middle_given_with_diacritics(rows):
    vietnamese = [r for r in rows if r["kind"] == "person" and r["language"] == "vi"]
    for row in vietnamese:
        parts = row["display_name"].split(" ")
        assert len(parts) == 3
        assert (parts[0], parts[-1]) == (row["family_name"], row["given_name"])
        assert row["country"] == "VN"
    families = Counter(row["family_name"] for row in vietnamese)
    assert families.most_common(1)[0][0] == "Nguyễn"
    assert {"Trần", "Lê", "Phạm", "Đặng", "Võ", "Huỳnh"} <= set(families)
    with_marks = _share(vietnamese, lambda r: not r["display_name"].isascii())
    assert with_marks > 0.9
    text = " ".join(row["display_name"] + row["address"] for row in vietnamese)
    assert all(letter in text for letter in "Đươăâêôạảãếồữỳỹ")
    assert " Thị " in text and " Văn " in text
    addresses = [row["address"] for row in vietnamese if row["address"]]
    assert all(address.count(", ") >= 3 for address in addresses)
    assert {"TP. Hồ Chí Minh", "Hà Nội", "Đà Nẵng", "Hải Phòng", "Cần Thơ"} == {
        address.rsplit(", ", 1)[1] for address in addresses
    }


def test_persian_rows_are_written_in_persian_script(rows):
    persian = [r for r in rows if r["language"] == "fa"]
    assert persian
    for row in persian:
        assert row["country"] == "IR"
        assert PERSIAN_LETTERS.match(row["display_name"]), row["display_name"]
        # Persian yeh and kaf, never their Arabic look-alikes.
        text = row["display_name"] + row["address"] + row["company"]
        assert "\u064a" not in text and "\u0643" not in text
        if row["phone"]:
            assert row["phone"].startswith("+98")
        if row["address"]:
            assert "،" in row["address"] and re.search("[۰-۹]", row["address"])
            assert not re.search("[0-9]", row["address"])
        assert row["email"].isascii()
    people = [row for row in persian if row["kind"] == "person"]
    assert all(r["display_name"] == f"{r['given_name']} {r['family_name']}" for r in people)


def test_international_persons_and_companies(rows):
    international = [r for r in rows if r["kind"] == "person" and r["language"] == "en"]
    assert {"US", "GB", "DE", "FR", "CN", "VN"} <= {row["country"] for row in international}
    assert all(row["given_name"] and row["family_name"] for row in international)
    companies = [r for r in rows if r["kind"] == "company"]
    assert all(not (r["given_name"] or r["family_name"] or r["company"]) for r in companies)
    names = [row["display_name"] for row in companies]
    assert _share(companies, lambda r: r["display_name"].startswith("Công ty TNHH ")) > 0.3
    assert any(name.startswith("Công ty Cổ phần ") for name in names)
    assert any(name.endswith(" Ltd") for name in names)
    assert any(name.endswith(" GmbH") for name in names)
    assert any(name.startswith("شرکت ") for name in names)
    known = set(names)
    employers = [row["company"] for row in rows if row["company"]]
    assert _share([{"c": c} for c in employers], lambda r: r["c"] in known) > 0.5


def test_emails_are_ascii_and_carry_the_running_number(rows):
    for row in rows:
        if row["email"]:
            assert EMAIL_RE.match(row["email"]), row["email"]
            number = str(int(row["external_ref"].removeprefix("CUST-")))
            assert re.search(rf"(?<![0-9]){number}@", row["email"]), row["email"]
    domains = Counter(row["email"].split("@")[1] for row in rows if row["email"])
    assert domains.most_common(1)[0][0] == "gmail.com"
    assert {"yahoo.com.vn", "outlook.com", "fpt.vn"} <= set(domains)


def test_phones_are_valid_numbers_of_the_row_country(rows):
    shapes = Counter()
    for row in rows:
        if not row["phone"]:
            continue
        number = phonenumbers.parse(row["phone"], "VN")
        assert phonenumbers.is_valid_number(number), row["phone"]
        assert number.country_code == COUNTRY_CODES[row["country"]], row
        if row["country"] == "VN":
            prefix = "+84" if row["phone"].startswith("+84") else "0"
            shapes[prefix + re.sub(r"\d", "9", row["phone"][len(prefix) :])] += 1
    assert {"0999 999 999", "0999999999", "+84 999 999 999", "099.999.9999"} <= set(shapes)


def test_write_csv_round_trips_without_bom(tmp_path):
    path = tmp_path / "customers.csv"
    assert write_csv(path, 2_000, seed=5) == 2_000
    raw = path.read_bytes()
    assert raw.startswith(b"external_ref,kind,")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        assert list(reader) == list(customer_rows(2_000, seed=5))


def test_write_csv_round_trips_with_bom(tmp_path):
    path = tmp_path / "customers.csv"
    assert write_csv(str(path), 1_000, bom=True) == 1_000
    assert path.read_bytes().startswith(b"\xef\xbb\xbfexternal_ref,")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        assert list(csv.DictReader(handle)) == list(customer_rows(1_000))


def test_write_csv_of_zero_rows_is_just_the_header(tmp_path):
    path = tmp_path / "empty.csv"
    assert write_csv(path, 0) == 0
    assert path.read_bytes() == (",".join(CSV_COLUMNS) + "\r\n").encode()


def test_generation_streams_in_constant_memory(tmp_path):
    tracemalloc.start()
    try:
        write_csv(tmp_path / "big.csv", 30_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000
    first = next(customer_rows(MAX_NUMBER))
    assert first["external_ref"] == "CUST-0000001"


@pytest.mark.parametrize(
    ("count", "start"), [(-1, 1), (1, 0), (2, MAX_NUMBER), (MAX_NUMBER + 1, 1)]
)
def test_invalid_arguments_are_refused(count, start):
    with pytest.raises(ValueError):
        customer_rows(count, start=start)
