"""Streaming CSV import of customers: validate, normalise, match, write in batches.

The file is read row by row and written in batches of ``BATCH`` rows with plain executemany
(never the ORM unit of work), so memory does not grow with the file and a million rows take
seconds. Rows are matched to existing customers by external ref or any identity, so importing
the same file twice creates nothing the second time. The whole import is one transaction:
``abort`` (the default) writes nothing if any row is bad, ``skip`` writes the good rows and a
CSV of the rejected ones, a dry run writes nothing at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import Connection

from core import audit, csvimport
from core.csvimport import (
    ImportFailed,
    RejectedWriter,
    RowError,
    Summary,
)
from core.customers import fields
from core.customers.models import COMPANY, EDITABLE_FIELDS, PERSON
from core.db import utcnow
from core.normalize import IdentityError, normalise_identity, search_key

if TYPE_CHECKING:
    from core.runtime import Crm

BATCH = 2000
SQLITE_CACHE_KIB = 65_536
IDENTITY_COLUMNS = ("email", "phone", "zalo", "facebook", "web")
COLUMNS = (
    "id",
    "external_ref",
    "kind",
    "display_name",
    "given_name",
    "family_name",
    "company",
    *IDENTITY_COLUMNS,
    "address",
    "country",
    "language",
    "tags",
    "source_channel",
    "owner",
)
NAME_COLUMNS = ("display_name", "given_name", "family_name")
SCALARS = EDITABLE_FIELDS
#: Columns of our own export that an import reads past (the database sets them).
READ_ONLY = ("archived", "created_at", "updated_at")
# Cells our own export neutralised against formula injection; the import takes the ' off.
_NEUTRALISED = frozenset(("'=", "'+", "'-", "'@", "'\t", "'\r"))


@dataclass
class Row:
    """One valid, normalised CSV row."""

    line: int
    values: dict[str, Any]
    identities: list[tuple[str, str]]
    tags: list[str]
    company: str | None
    raw: list[str]


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """``["Họ tên=display_name", "Notes=-"]`` as a dict; ``-`` ignores a column."""
    return csvimport.parse_mapping(pairs, COLUMNS)


def _header(raw: list[str], mapping: dict[str, str]) -> list[str | None]:
    return csvimport.header(raw, mapping, COLUMNS, required=(NAME_COLUMNS,), read_past=READ_ONLY)


class _Parser:
    """Turns CSV rows into checked, normalised ``Row``s (the hot loop of an import)."""

    def __init__(self, header: list[str | None], region: str, owners: dict[str, int]) -> None:
        self.columns = [(name, i) for i, name in enumerate(header) if name]
        self.identity_columns = [name for name in IDENTITY_COLUMNS if name in header]
        self.region = region
        self.owners = owners
        self.width = len(header)

    def parse(self, line: int, raw: list[str]) -> Row:
        """The row as a ``Row``, or ``RowError`` naming the field at fault."""
        if len(raw) != self.width:
            raise RowError("", f"has {len(raw)} cells, the header has {self.width}")
        cells = {
            name: (value[1:] if value[:2] in _NEUTRALISED else value)
            for name, i in self.columns
            for value in (raw[i].strip(),)
        }
        get = cells.get
        identities: list[tuple[str, str]] = []
        region = self.region
        for channel in self.identity_columns:
            cell = cells[channel]
            if not cell:
                continue
            for part in cell.split(";") if ";" in cell else (cell,):
                if part.strip():
                    try:
                        pair = (channel, normalise_identity(channel, part, region))
                    except IdentityError as exc:
                        raise RowError(channel, str(exc)) from None
                    if pair not in identities:
                        identities.append(pair)
        text = fields.text
        try:
            country = fields.country(get("country"))
            language = fields.language(get("language"))
            given = text("given_name", get("given_name"))
            family = text("family_name", get("family_name"))
            name = fields.display_name(
                given, family, text("display_name", get("display_name")), country, language
            )
            kind = get("kind")
            values = {
                "kind": PERSON if not kind or kind == PERSON else fields.kind(kind),
                "display_name": name,
                "given_name": given,
                "family_name": family,
                "address": text("address", get("address")),
                "country": country,
                "language": language,
                "source_channel": text("source_channel", get("source_channel")),
                "external_ref": text("external_ref", get("external_ref")),
            }
            tag_cell = get("tags")
            tags = fields.tags(tag_cell) if tag_cell else []
            company = text("display_name", get("company"))
        except fields.FieldError as exc:
            raise RowError(exc.field, str(exc)) from None
        owner = get("owner")
        if owner:
            owner_id = self.owners.get(owner.lower())
            if owner_id is None:
                raise RowError("owner", f"no active user with e-mail {owner!r}")
            values["owner_id"] = owner_id
        if company and values["kind"] == COMPANY:
            raise RowError("company", "a company cannot belong to a company")
        customer_id = get("id")
        if customer_id:
            if not customer_id.isdigit():
                raise RowError("id", f"id must be a whole number, not {customer_id!r}")
            values["id"] = int(customer_id)
        return Row(line, values, identities, tags, company, raw)


class _Writer:
    """Matches and writes batches of rows on one connection, inside the import transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        self.now: Any = utcnow()
        if self.sqlite:
            self.now = self.now.strftime("%Y-%m-%d %H:%M:%S.%f")
        self.next_id = None
        if self.sqlite:
            # A bigger page cache for this connection: index inserts stay in memory.
            conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
            self.next_id = conn.exec_driver_sql(
                "SELECT coalesce(max(id), 0) + 1 FROM core_customer"
            ).scalar()

    def _in(self, column_sql: str, values: list[Any]) -> str:
        return f"{column_sql} IN ({', '.join([self.mark] * len(values))})"

    def _select(self, sql: str, params: list[Any]) -> list[tuple]:
        if not params:
            return []
        return list(self.conn.exec_driver_sql(sql, tuple(params)))

    def _ids(self, count: int) -> list[int]:
        if self.sqlite:
            start = self.next_id
            self.next_id += count
            return list(range(start, start + count))
        return list(
            self.conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('core_customer', 'id'))"
                f" FROM generate_series(1, {int(count)})"
            ).scalars()
        )

    def companies(self, names: set[str]) -> dict[str, int]:
        """Ids of companies by search key, creating the missing ones."""
        keys = {search_key(n): n for n in names}
        found = dict(
            self._select(
                f"SELECT search_key, min(id) FROM core_customer WHERE kind = 'company' AND "
                f"{self._in('search_key', list(keys))} GROUP BY search_key",
                list(keys),
            )
        )
        missing = [k for k in keys if k not in found]
        if missing:
            ids = self._ids(len(missing))
            self._insert_customers(
                [
                    (cid, COMPANY, keys[k], None, None, None, None, None, None, None, None, None, k)
                    for cid, k in zip(ids, missing, strict=True)
                ]
            )
            found.update(zip(missing, ids, strict=True))
        return found

    def _insert_customers(self, rows: list[tuple]) -> None:
        columns = ("id", *EDITABLE_FIELDS, "search_key")  # the order of the tuples below
        marks = ", ".join([self.mark] * (len(columns) + 4))
        self.conn.exec_driver_sql(
            f"INSERT INTO core_customer ({', '.join(columns)}, archived, created_at, "
            f"updated_at, version) VALUES ({marks})",
            [(*row, False, self.now, self.now, 1) for row in rows],
        )

    def write(
        self, rows: list[Row], on_error: Callable[[Row, str, str], None]
    ) -> tuple[int, int, int]:
        """Create or update ``rows`` in file order; returns (created, updated, unchanged).

        A row that concerns a customer an earlier row of the same batch already touched is
        written in a following round, so the file reads as if applied row by row.
        """
        totals = [0, 0, 0]
        while rows:
            rows = self._write_round(rows, on_error, totals)
        return totals[0], totals[1], totals[2]

    def _write_round(
        self, rows: list[Row], on_error: Callable[[Row, str, str], None], totals: list[int]
    ) -> list[Row]:
        companies = self.companies({r.company for r in rows if r.company})
        refs = [r.values["external_ref"] for r in rows if r.values["external_ref"]]
        by_ref = dict(
            self._select(
                "SELECT external_ref, id FROM core_customer WHERE "
                + self._in("external_ref", refs),
                refs,
            )
        )
        wanted_ids = [r.values["id"] for r in rows if r.values.get("id")]
        known_ids = {
            i
            for (i,) in self._select(
                f"SELECT id FROM core_customer WHERE {self._in('id', wanted_ids)}", wanted_ids
            )
        }
        by_channel: dict[str, set[str]] = {}
        for row in rows:
            for channel, value in row.identities:
                by_channel.setdefault(channel, set()).add(value)
        by_identity: dict[tuple[str, str], int] = {}
        for channel, channel_values in by_channel.items():
            values = list(channel_values)
            # channel first, so the lookup uses the (channel, value) unique index
            for value, cid in self._select(
                "SELECT value, customer_id FROM core_customer_identity WHERE channel = "
                f"{self.mark} AND {self._in('value', values)}",
                [channel, *values],
            ):
                by_identity[(channel, value)] = cid

        new: list[tuple[Row, int]] = []
        updates: dict[int, Row] = {}
        local: dict[tuple[str, str], int] = {}
        deferred: list[Row] = []
        for position, row in enumerate(rows):
            keys = list(row.identities)
            ref = row.values["external_ref"]
            if ref:
                keys.append(("ref", ref))
            given_id = row.values.get("id")
            if given_id is not None:
                if given_id not in known_ids:
                    on_error(row, "id", f"no customer with id {given_id}")
                    continue
                keys.append(("id", given_id))
            if any(k in local for k in keys):
                deferred = rows[position:]
                break
            owners = {by_ref[ref]} if ref and ref in by_ref else set()
            if given_id is not None:
                owners.add(given_id)
            owners.update(by_identity[p] for p in row.identities if p in by_identity)
            if len(owners) > 1:
                on_error(
                    row,
                    "identity",
                    "its identities belong to different customers "
                    + " and ".join(str(o) for o in sorted(owners)),
                )
                continue
            if row.company:
                row.values["company_id"] = companies[search_key(row.company)]
            if owners:
                target = owners.pop()
                if target in updates:
                    deferred = rows[position:]
                    break
                updates[target] = row
                cid = target
            else:
                cid = -len(new) - 1  # a placeholder until ids are allocated below
                new.append((row, cid))
            for key in keys:
                local[key] = cid
        ids = self._ids(len(new)) if new else []
        new = [(row, cid) for (row, _), cid in zip(new, ids, strict=True)]
        self._create(new)
        updated, unchanged = self._update(updates)
        totals[0] += len(new)
        totals[1] += updated
        totals[2] += unchanged
        return deferred

    def _create(self, new: list[tuple[Row, int]]) -> None:
        if not new:
            return
        self._insert_customers(
            [
                (
                    cid,
                    v["kind"],
                    v["display_name"],
                    v["given_name"],
                    v["family_name"],
                    v.get("company_id"),
                    v["address"],
                    v["country"],
                    v["language"],
                    v.get("owner_id"),
                    v["source_channel"],
                    v["external_ref"],
                    search_key(v["display_name"]),
                )
                for row, cid in new
                for v in (row.values,)
            ]
        )
        identities = [(cid, c, val, self.now) for row, cid in new for c, val in row.identities]
        if identities:
            self.conn.exec_driver_sql(
                "INSERT INTO core_customer_identity (customer_id, channel, value, created_at)"
                f" VALUES ({self.mark}, {self.mark}, {self.mark}, {self.mark})",
                identities,
            )
        tags = [(cid, tag) for row, cid in new for tag in row.tags]
        if tags:
            self.conn.exec_driver_sql(
                f"INSERT INTO core_customer_tag (customer_id, tag) VALUES ({self.mark}, "
                f"{self.mark})",
                tags,
            )

    def _update(self, updates: dict[int, Row]) -> tuple[int, int]:
        if not updates:
            return 0, 0
        ids = list(updates)
        columns = ", ".join(SCALARS)
        current = {
            r[0]: r[1:]
            for r in self._select(
                f"SELECT id, {columns} FROM core_customer WHERE {self._in('id', ids)}", ids
            )
        }
        tags: dict[int, set[str]] = {}
        for cid, tag in self._select(
            f"SELECT customer_id, tag FROM core_customer_tag WHERE {self._in('customer_id', ids)}",
            ids,
        ):
            tags.setdefault(cid, set()).add(tag)
        idents: set[tuple[int, str, str]] = {
            tuple(r)
            for r in self._select(
                "SELECT customer_id, channel, value FROM core_customer_identity WHERE "
                f"{self._in('customer_id', ids)}",
                ids,
            )
        }
        changed_rows, new_tags, new_identities = [], [], []
        updated = unchanged = 0
        for cid, row in updates.items():
            before = dict(zip(SCALARS, current[cid], strict=True))
            after = dict(before)
            for name in SCALARS:
                value = row.values.get(name)
                if value is not None and not (
                    name == "kind" and value == PERSON and before["kind"] == COMPANY
                ):
                    after[name] = value
            extra_tags = [t for t in row.tags if t not in tags.get(cid, set())]
            extra_ids = [(c, v) for c, v in row.identities if (cid, c, v) not in idents]
            if after == before and not extra_tags and not extra_ids:
                unchanged += 1
                continue
            updated += 1
            changed_rows.append(
                (*[after[n] for n in SCALARS], search_key(after["display_name"]), self.now, cid)
            )
            new_tags.extend((cid, t) for t in extra_tags)
            new_identities.extend((cid, c, v, self.now) for c, v in extra_ids)
        if changed_rows:
            sets = ", ".join(f"{n} = {self.mark}" for n in (*SCALARS, "search_key", "updated_at"))
            self.conn.exec_driver_sql(
                f"UPDATE core_customer SET {sets}, version = version + 1 WHERE id = {self.mark}",
                changed_rows,
            )
        if new_tags:
            self.conn.exec_driver_sql(
                f"INSERT INTO core_customer_tag (customer_id, tag) VALUES ({self.mark}, "
                f"{self.mark})",
                new_tags,
            )
        if new_identities:
            self.conn.exec_driver_sql(
                "INSERT INTO core_customer_identity (customer_id, channel, value, created_at)"
                f" VALUES ({self.mark}, {self.mark}, {self.mark}, {self.mark})",
                new_identities,
            )
        return updated, unchanged


def import_rows(
    crm: Crm,
    handle: IO[str],
    *,
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
    on_error: str = "abort",
    rejected_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
    source: str = "csv",
) -> Summary:
    """Import customers from a CSV text stream; see the module docstring for the modes."""
    if on_error not in ("abort", "skip"):
        raise ImportFailed("--on-error must be abort or skip")
    started = time.perf_counter()
    rows = csvimport.rows(handle)
    try:
        _, raw_header = next(rows)
    except StopIteration:
        raise ImportFailed("the file is empty") from None
    header = _header(raw_header, mapping or {})
    run = _Import(
        Summary(dry_run=dry_run), RejectedWriter(rejected_path, raw_header), on_error, progress
    )
    run.run(crm, rows, header, dry_run, source)
    run.summary.seconds = round(time.perf_counter() - started, 3)
    return run.summary


class _Import:
    """One import run: parses rows, writes them in batches, counts and reports."""

    def __init__(
        self,
        summary: Summary,
        rejected: RejectedWriter,
        on_error: str,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.summary, self.rejected, self.on_error = summary, rejected, on_error
        self.progress = progress
        self.batch: list[Row] = []

    def reject(self, line: int, raw: list[str], field_name: str, message: str) -> None:
        """Count a bad row and report it with its line and field."""
        self.summary.rejected += 1
        where = f"line {line}" + (f", {field_name}" if field_name else "")
        self.summary.errors.append({"line": line, "field": field_name, "error": message})
        self.rejected.write(line, f"{where}: {message}", raw)

    def flush(self, writer: _Writer) -> None:
        """Write the pending batch (unless an abort-mode import already failed)."""
        if not self.batch:
            return
        summary = self.summary
        if not (summary.rejected and self.on_error == "abort"):
            created, updated, unchanged = writer.write(
                self.batch, lambda r, f, m: self.reject(r.line, r.raw, f, m)
            )
            summary.created += created
            summary.updated += updated
            summary.unchanged += unchanged
        self.batch.clear()
        if self.progress:
            self.progress(summary.created + summary.updated + summary.unchanged + summary.rejected)

    def run(
        self,
        crm: Crm,
        rows: Iterator[tuple[int, list[str]]],
        header: list[str | None],
        dry_run: bool,
        source: str,
    ) -> None:
        """Read every row inside one transaction; commit, or roll back as the mode says."""
        from core.models import User

        summary = self.summary
        with crm.db.writer.connect() as conn:
            transaction = conn.begin()
            try:
                owners = {
                    email.lower(): user_id
                    for user_id, email in conn.execute(
                        User.__table__.select()
                        .with_only_columns(User.id, User.email)
                        .where(User.is_active)
                    ).all()
                }
                parser = _Parser(header, crm.settings.default_region, owners)
                writer = _Writer(conn)
                for line, raw in rows:
                    if not "".join(raw).strip():
                        continue
                    try:
                        self.batch.append(parser.parse(line, raw))
                    except RowError as exc:
                        self.reject(line, raw, exc.field, str(exc))
                    if len(self.batch) >= BATCH:
                        self.flush(writer)
                self.flush(writer)
                if summary.rejected and self.on_error == "abort":
                    summary.created = summary.updated = summary.unchanged = 0
                    summary.written = False
                    transaction.rollback()
                elif dry_run:
                    summary.written = False
                    transaction.rollback()
                else:
                    self._record(crm, conn, source)
                    transaction.commit()
                    _wake_webhooks(crm)
            except BaseException:
                if transaction.is_active:
                    transaction.rollback()
                self.rejected.discard()
                raise
            finally:
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("PRAGMA cache_size = -2000")  # SQLite's default
        summary.rejected_file = self.rejected.close()

    def _record(self, crm: Crm, conn: Connection, source: str) -> None:
        """Audit the import and publish its one ``customers.imported`` webhook event."""
        from sqlalchemy.orm import Session

        from core.customers import webhooks

        summary = self.summary
        with Session(bind=conn) as session:
            webhooks.publish_imported(
                session,
                crm,
                source=source,
                created=summary.created,
                updated=summary.updated,
                unchanged=summary.unchanged,
                rejected=summary.rejected,
            )
            audit.record(
                session,
                "import",
                "customer",
                None,
                detail=f"import from {source}",
                after={
                    "created": summary.created,
                    "updated": summary.updated,
                    "unchanged": summary.unchanged,
                    "rejected": summary.rejected,
                },
            )


def _wake_webhooks(crm: Crm) -> None:
    """Let a background deliverer send the import's webhook event now: the import commits its
    connection, not a session, so the session's after-commit wake-up does not happen."""
    from core.webhooks import delivery

    delivery.wake(crm)
