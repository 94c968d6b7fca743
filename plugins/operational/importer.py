"""Streaming CSV imports of orders (one row per order line) and of products.

Built like the customer import: the file is read row by row and written in batches with plain
executemany (never the ORM unit of work) inside one transaction, so memory does not grow with
the file. ``abort`` (the default) writes nothing if any row is bad; ``skip`` writes the good
orders and a CSV of the rejected rows with line and reason; a dry run writes nothing at all.
Orders are matched by ``order_ref`` and products by SKU, so importing a file again creates
nothing.

The rows of one order must follow each other (as any export sorted by order writes them); rows
of an order this import created that turn up again later are rejected. (For an order that was
already stored, rows found apart in different batches are not detected: the later ones win.)
An order is written whole or not at all: when one of its rows is bad, all of its rows are
rejected, so the rejected-rows file can be corrected and imported as it is. An order already in
the database is updated to what the file says (its lines replaced when they differ).
"""

from __future__ import annotations

import datetime as dt
import gc
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from core import audit, csvimport
from core.csvimport import (
    ImportFailed,
    RejectedWriter,
    RowError,
    Summary,
)
from core.db import utcnow
from core.money import Money, minor_digits
from core.normalize import IdentityError, normalise_identity, search_key
from plugins.operational import orders
from plugins.operational.models import ORDER_STATUSES, Order, OrderLine, Product

if TYPE_CHECKING:
    from core.runtime import Crm

BATCH = 2000
SQLITE_CACHE_KIB = 65_536
ORDER_COLUMNS = (
    "order_ref",
    "customer_ref",
    "email",
    "phone",
    "customer_name",
    "placed_at",
    "sku",
    "product_name",
    "quantity",
    "unit_price",
    "discount",
    "amount",
    "currency",
    "channel",
    "status",
)
#: Columns that describe the order, not the line: every row of an order repeats them or
#: leaves them empty.
ORDER_HEADER = (
    "customer_ref",
    "email",
    "phone",
    "customer_name",
    "placed_at",
    "currency",
    "channel",
    "status",
)
PRODUCT_COLUMNS = ("sku", "name", "category", "price", "cost", "currency", "active", "upgrade_to")
_TRUE = frozenset(("1", "true", "yes", "y", "x"))
_FALSE = frozenset(("0", "false", "no", "n"))
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_LIMITS = {
    "order_ref": 64,
    "customer_ref": 100,
    "customer_name": 200,
    "sku": 64,
    "product_name": 200,
    "name": 200,
    "category": 100,
    "channel": 30,
    "upgrade_to": 64,
}


@dataclass
class OrderSummary(Summary):
    """An order import: ``created``, ``updated``, ``unchanged`` count orders."""

    lines: int = 0
    customers_created: int = 0
    products_created: int = 0
    notified: int = 0


# --- reading the file ------------------------------------------------------------------------


# --- cells -----------------------------------------------------------------------------------


def _text(name: str, value: str) -> str | None:
    """A trimmed cell, ``None`` when empty; length-checked."""
    if not value:
        return None
    cleaned = " ".join(value.split())
    if not cleaned:
        return None
    limit = _TEXT_LIMITS.get(name, 200)
    if len(cleaned) > limit:
        raise RowError(name, f"{name} is longer than {limit} characters")
    if _CONTROL.search(cleaned):
        raise RowError(name, f"{name} contains control characters")
    return cleaned


def parse_minor(text: str, code: str, name: str) -> int:
    """A decimal amount in major units as minor units of ``code`` (``12.50`` USD is 1250).

    The plain forms (``125000``, ``12.5``) take a fast path that gives what
    ``Money.parse`` gives; the rest goes through ``Money.parse``. Negative amounts are
    refused, and so is ``125.000`` in a currency without decimals (a thousands separator, or
    a mistake either way).
    """
    digits = minor_digits(code)
    amount = None
    if text.isascii():
        if text.isdigit():
            amount = int(text) * 10**digits
        else:
            whole, dot, fraction = text.partition(".")
            if dot and whole.isdigit() and fraction.isdigit() and len(fraction) <= digits:
                amount = int(whole) * 10**digits + int(fraction.ljust(digits, "0"))
    if amount is None:
        amount = _parse_money(text, code, name)
    if amount > orders.MAX_MINOR:
        raise RowError(name, f"{name} {text!r} is too large")
    return amount


def _parse_money(text: str, code: str, name: str) -> int:
    """The slow path of :func:`parse_minor`: ``Money.parse`` and its errors."""
    if minor_digits(code) == 0 and len(text.rpartition(".")[2].strip()) == 3 and "." in text:
        raise RowError(
            name,
            f"{name} {text!r} is ambiguous: {code} has no decimals; write it without a "
            "thousands separator",
        )
    try:
        amount = Money.parse(text, code).amount
    except ValueError as exc:
        raise RowError(name, f"{name}: {exc}") from None
    if amount < 0:
        raise RowError(name, f"{name} must not be negative")
    return amount


def _quantity(text: str) -> int:
    """A line's quantity: a whole number from 1 (1 when empty)."""
    if not text:
        return 1
    if text.isascii() and text.isdigit() and 1 <= int(text) <= orders.MAX_QUANTITY:
        return int(text)
    raise RowError("quantity", f"quantity must be a whole number from 1, not {text!r}")


def _currency(text: str, default: str) -> str:
    """An ISO 4217 code, upper-cased; ``default`` when empty."""
    if not text:
        return default
    code = text.upper()
    try:
        minor_digits(code)
    except ValueError:
        raise RowError("currency", f"unknown currency {text!r}") from None
    return code


class _Times:
    """Reads ``placed_at`` cells (ISO 8601; without an offset, in the setting ``timezone``)."""

    def __init__(self, timezone: str, sqlite: bool) -> None:
        self.zone = ZoneInfo(timezone)
        self.sqlite = sqlite
        self.last: tuple[str, Any] = ("", None)

    def parse(self, text: str) -> Any:
        """The stored form of the time: a UTC string on SQLite, an aware datetime else."""
        if text == self.last[0]:
            return self.last[1]
        if not text:
            raise RowError("placed_at", "placed_at is required")
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise RowError(
                "placed_at",
                f"placed_at {text!r} is not a date and time; write 2026-01-15, "
                "2026-01-15 10:30 or 2026-01-15T10:30:00+07:00",
            ) from None
        if self.sqlite:
            # Naive UTC text as SQLAlchemy stores it; utcoffset reads a naive time in the zone.
            offset = value.utcoffset() if value.tzinfo else self.zone.utcoffset(value)
            naive = value.replace(tzinfo=None) - offset
            stored: Any = naive.isoformat(" ", "microseconds")
        else:
            stored = value if value.tzinfo else value.replace(tzinfo=self.zone)
            stored = stored.astimezone(dt.UTC)
        self.last = (text, stored)
        return stored


# --- orders: parsing -------------------------------------------------------------------------

#: An order line as parsed: ``(line, sku, product_name, quantity, unit_price, discount,
#: amount)``, amounts in minor units; ``sku`` ``None`` is the order-level amount. Plain tuples:
#: an import makes millions of them.
_Line = tuple[int, str | None, str | None, int, int | None, int, int | None]
#: Caches of cleaned cells are emptied when they reach this size (memory stays bounded).
_CACHE_LIMIT = 65_536
_UNSET = object()


@dataclass
class _Order:
    """The rows of one order as the file gives them, with the first row's order fields."""

    ref: str
    line: int
    raw_ref: str
    key: tuple[str, ...]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    lines: list[_Line] = field(default_factory=list)
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    customer_ref: str | None = None
    email: str | None = None
    phone: str | None = None
    customer_name: str | None = None
    placed_at: Any = None
    currency: str = ""
    scale: int = 1
    channel: str | None = None
    status: str = "placed"
    has_total: bool = False
    customer_id: int | None = None
    owner_id: int | None = None
    new_customer: dict[str, Any] | None = None


def _minor_cell(cell: str, code: str, scale: int, name: str) -> int | None:
    """An amount cell in minor units (``scale`` is 10 to the currency's digits); empty: None."""
    if cell.isdecimal() and len(cell) < 16:
        return int(cell) * scale
    cell = cell.strip()
    return parse_minor(cell, code, name) if cell else None


class _OrderParser:
    """Groups rows into orders and checks each cell (the hot loop of an order import)."""

    def __init__(
        self,
        header: list[str | None],
        crm: Crm,
        sqlite: bool,
        reject_row: Callable[[int, list[str], str, str], None],
    ) -> None:
        index = {name: i for i, name in enumerate(header) if name}
        self.width = len(header)
        self.ref_at = index["order_ref"]
        self.order_cells = [(name, index[name]) for name in ORDER_HEADER if name in index]
        positions = [at for _, at in self.order_cells]
        # One C-level call gives a row's order cells, compared at once with the first row's.
        self.order_key = itemgetter(*positions, *positions[:1])
        self.line_cells = tuple(
            index.get(name)
            for name in ("sku", "product_name", "quantity", "unit_price", "discount", "amount")
        )
        self.region = crm.settings.default_region
        self.default_currency = crm.settings.default_currency
        self.times = _Times(crm.settings.timezone, sqlite)
        self.reject_row = reject_row
        self.current: _Order | None = None
        self.skus: dict[str, str | None] = {}
        self.cells: dict[tuple[str, str], Any] = {}

    def feed(self, line: int, raw: list[str]) -> _Order | None:
        """Add a row; returns the previous order when this row starts another one."""
        order = self.current
        done = None
        if order is not None and len(raw) == self.width and raw[self.ref_at] == order.raw_ref:
            if self.order_key(raw) != order.key:
                self._same_order(order, line, raw)
        else:
            if not any(raw):
                return None
            ref = raw[self.ref_at].strip() if len(raw) > self.ref_at else ""
            if len(raw) != self.width:
                self._bad_row(line, raw, ref, f"has {len(raw)} cells, the header has {self.width}")
                return None
            if not ref:
                self.reject_row(line, raw, "order_ref", "order_ref is required on every row")
                return None
            if order is not None and ref == order.ref:
                self._same_order(order, line, raw)
            else:
                done, order = order, self._start(line, raw, ref)
                self.current = order
        order.rows.append((line, raw))
        try:
            order.lines.append(self._line(line, raw, order))
        except RowError as exc:
            order.errors.append((line, exc.field, str(exc)))
        return done

    def finish(self) -> _Order | None:
        """The last order of the file."""
        done, self.current = self.current, None
        return done

    def _bad_row(self, line: int, raw: list[str], ref: str, message: str) -> None:
        """A row too short or too long: part of the current order if it names it."""
        order = self.current
        if order is not None and ref == order.ref:
            order.rows.append((line, raw))
            order.errors.append((line, "", message))
        else:
            self.reject_row(line, raw, "", message)

    def _start(self, line: int, raw: list[str], ref: str) -> _Order:
        """A new order, its order cells read from its first row."""
        order = _Order(
            ref=ref,
            line=line,
            raw_ref=raw[self.ref_at],
            key=self.order_key(raw),
            currency=self.default_currency,
        )
        try:
            if len(ref) > _TEXT_LIMITS["order_ref"]:
                raise RowError("order_ref", "order_ref is longer than 64 characters")
            for name, at in self.order_cells:
                setattr(order, name, self._order_cell(name, raw[at]))
            order.scale = 10 ** minor_digits(order.currency)
            if not (order.customer_ref or order.email or order.phone):
                raise RowError("customer_ref", "give the customer: customer_ref, email or phone")
            if order.placed_at is None:
                raise RowError("placed_at", "placed_at is required")
        except RowError as exc:
            order.errors.append((line, exc.field, str(exc)))
        return order

    def _order_cell(self, name: str, cell: str) -> Any:
        """The value of an order-level cell (cached: customers and channels repeat)."""
        if name == "placed_at":
            return self.times.parse(cell.strip())
        value = self.cells.get((name, cell), _UNSET)
        if value is _UNSET:
            value = self._read_order_cell(name, cell.strip())
            if len(self.cells) >= _CACHE_LIMIT:
                self.cells.clear()
            self.cells[(name, cell)] = value
        return value

    def _read_order_cell(self, name: str, cell: str) -> Any:
        if name == "currency":
            return _currency(cell, self.default_currency)
        if name == "status":
            value = cell.lower() or "placed"
            if value not in ORDER_STATUSES:
                raise RowError("status", f"status must be one of {', '.join(ORDER_STATUSES)}")
            return value
        if name in ("email", "phone"):
            if not cell:
                return None
            try:
                return normalise_identity(name, cell, self.region)
            except IdentityError as exc:
                raise RowError(name, str(exc)) from None
        return _text(name, cell)

    def _same_order(self, order: _Order, line: int, raw: list[str]) -> None:
        """A further row of ``order``: its order cells are empty or say the same."""
        for (name, at), first in zip(self.order_cells, order.key, strict=False):
            cell = raw[at]
            if cell == first or not cell.strip():
                continue
            try:
                value = self._order_cell(name, cell)
            except RowError as exc:
                order.errors.append((line, exc.field, str(exc)))
                continue
            if value != getattr(order, name):
                message = (
                    f"{name} {cell.strip()!r} differs from the order's first row ({order.line})"
                )
                order.errors.append((line, name, message))

    def _sku(self, cell: str) -> str | None:
        sku = self.skus.get(cell, _UNSET)
        if sku is _UNSET:
            sku = _text("sku", cell)
            if len(self.skus) >= _CACHE_LIMIT:
                self.skus.clear()
            self.skus[cell] = sku
        return sku  # type: ignore[return-value]

    def _line(self, line: int, raw: list[str], order: _Order) -> _Line:
        sku_at, name_at, quantity_at, price_at, discount_at, amount_at = self.line_cells
        code, scale = order.currency, order.scale
        sku = self._sku(raw[sku_at]) if sku_at is not None else None
        # Plain whole numbers (most cells) inline; the rest through _minor_cell.
        price = discount = amount = None
        if price_at is not None:
            cell = raw[price_at]
            if cell.isdecimal() and len(cell) < 16:
                price = int(cell) * scale
            elif cell:
                price = _minor_cell(cell, code, scale, "unit_price")
        if discount_at is not None:
            cell = raw[discount_at]
            if cell.isdecimal() and len(cell) < 16:
                discount = int(cell) * scale
            elif cell:
                discount = _minor_cell(cell, code, scale, "discount")
        if amount_at is not None:
            cell = raw[amount_at]
            if cell.isdecimal() and len(cell) < 16:
                amount = int(cell) * scale
            elif cell:
                amount = _minor_cell(cell, code, scale, "amount")
        if sku is None:
            if amount is None:
                raise RowError("sku", "give a sku (an order line) or an amount (the order's total)")
            if price is not None or discount is not None:
                raise RowError("sku", "a row without sku is the order's amount: no unit price")
            order.has_total = True
            return (line, None, None, 1, None, 0, amount)
        cell = raw[quantity_at] if quantity_at is not None else ""
        if not (cell.isdecimal() and len(cell) < 10 and (quantity := int(cell))):
            quantity = _quantity(cell.strip())
        name = _text("product_name", raw[name_at]) if name_at is not None else None
        return (line, sku, name, quantity, price, discount or 0, amount)


def _shape_error(order: _Order) -> tuple[int, str, str] | None:
    """An order has lines or one order-level amount, not both."""
    if not order.has_total:
        return None
    totals = [ln[0] for ln in order.lines if ln[1] is None]
    if len(totals) < len(order.lines):
        return (
            totals[0],
            "amount",
            "an order has lines (with sku) or one order-level amount (without), not both",
        )
    if len(totals) > 1:
        return (
            totals[1],
            "amount",
            f"order {order.ref} already has its amount on line {totals[0]}",
        )
    return None


# --- writing ---------------------------------------------------------------------------------


class _Sql:
    """Plain SQL on the import's connection: placeholders, lookups, id allocation."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        now = utcnow()
        self.now: Any = now.strftime(_SQLITE_TIME) if self.sqlite else now
        self.next_ids: dict[str, int] = {}

    def marks(self, count: int) -> str:
        """``?, ?, ?`` for ``count`` values."""
        return ", ".join([self.mark] * count)

    def select_in(self, sql: str, values: list[Any], *before: Any) -> list[tuple]:
        """Rows of ``sql`` whose ``{marks}`` get one placeholder per value (after ``before``)."""
        if not values:
            return []
        query = sql.format(marks=self.marks(len(values)))
        return self.conn.exec_driver_sql(query, (*before, *values)).fetchall()

    def execute_in(self, sql: str, values: list[Any]) -> None:
        """Run a statement whose ``{marks}`` get one placeholder per value."""
        if values:
            self.conn.exec_driver_sql(sql.format(marks=self.marks(len(values))), tuple(values))

    def insert(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """One executemany of ``rows`` into ``table``."""
        if rows:
            self.conn.exec_driver_sql(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({self.marks(len(columns))})",
                rows,
            )

    def ids(self, table: str, count: int) -> list[int]:
        """``count`` fresh primary keys of ``table`` (the import holds the write lock)."""
        if not count:
            return []
        if self.sqlite:
            start = self.next_ids.get(table)
            if start is None:
                start = self.conn.exec_driver_sql(
                    f"SELECT coalesce(max(id), 0) + 1 FROM {table}"
                ).scalar()
            self.next_ids[table] = start + count
            return list(range(start, start + count))
        return list(
            self.conn.exec_driver_sql(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))"
                f" FROM generate_series(1, {int(count)})"
            ).scalars()
        )


_ORDER_COLUMNS = (
    "id",
    "ref",
    "customer_id",
    "channel",
    "status",
    "placed_at",
    "currency",
    "total_minor",
    "cost_minor",
    "owner_id",
    "created_at",
    "version",
)
_LINE_COLUMNS = (
    "order_id",
    "product_id",
    "quantity",
    "unit_price_minor",
    "discount_minor",
    "amount_minor",
)
_PRODUCT_COLUMNS = (
    "id",
    "sku",
    "name",
    "category",
    "price_minor",
    "cost_minor",
    "currency",
    "active",
    "upgrade_to_id",
    "created_at",
    "updated_at",
    "version",
)

Reject = Callable[[_Order, int, str, str], None]


@dataclass
class _Built:
    """An order ready to write: its lines as rows, its total and cost."""

    order: _Order
    lines: list[tuple[int | None, int, int, int, int]]
    total: int
    cost: int | None


class _OrderWriter:
    """Matches customers, products and orders for a batch of orders and writes them."""

    def __init__(
        self,
        conn: Connection,
        summary: OrderSummary,
        create_customers: bool,
        create_products: bool,
        created_log: IO[str] | None,
    ) -> None:
        self.sql = _Sql(conn)
        self.summary = summary
        self.create_customers, self.create_products = create_customers, create_products
        self.created_log = created_log
        #: sku -> (id, price_minor, cost_minor, currency): bounded by the catalogue
        self.products: dict[str, tuple[int, int, int | None, str]] = {}
        self.first_new_order: int | None = None

    def write(self, batch: list[_Order], reject: Reject) -> None:
        """Write a batch of orders; bad ones are passed to ``reject`` whole."""
        batch = self._match_customers(batch, reject)
        batch = self._match_products(batch, reject)
        built = [b for order in batch if (b := self._build(order, reject)) is not None]
        self._save(built, reject)

    # customers

    def _match_customers(self, batch: list[_Order], reject: Reject) -> list[_Order]:
        """Give each order its customer (found, or created when allowed); reject the rest."""
        known = self._known_customers(batch)
        kept, new = [], []
        local: dict[tuple[str, str], dict[str, Any]] = {}
        for order in batch:
            problem = self._customer_of(order, known, local, new)
            if problem is None:
                kept.append(order)
            else:
                reject(order, order.line, *problem)
        self._create_customers(new)
        for order in kept:
            if order.new_customer is not None:
                order.customer_id = order.new_customer["id"]
        return kept

    def _known_customers(self, batch: list[_Order]) -> dict[tuple[str, str], tuple[int, Any]]:
        """``(id, owner_id)`` of the stored customers the batch names, by (kind, value)."""
        sql = self.sql
        known: dict[tuple[str, str], tuple[int, Any]] = {}
        refs = sorted({o.customer_ref for o in batch if o.customer_ref})
        for ref, cid, owner in sql.select_in(
            "SELECT external_ref, id, owner_id FROM core_customer WHERE external_ref IN ({marks})",
            refs,
        ):
            known[("ref", ref)] = (cid, owner)
        for channel in ("email", "phone"):
            values = sorted({getattr(o, channel) for o in batch if getattr(o, channel)})
            # channel first, so the lookup uses the (channel, value) unique index
            for value, cid, owner in sql.select_in(
                "SELECT i.value, c.id, c.owner_id FROM core_customer_identity i JOIN "
                f"core_customer c ON c.id = i.customer_id WHERE i.channel = {sql.mark} AND "
                "i.value IN ({marks})",
                values,
                channel,
            ):
                known[(channel, value)] = (cid, owner)
        return known

    def _customer_of(
        self,
        order: _Order,
        known: dict[tuple[str, str], tuple[int, Any]],
        local: dict[tuple[str, str], dict[str, Any]],
        new: list[dict[str, Any]],
    ) -> tuple[str, str] | None:
        """Set the order's customer; ``(column, reason)`` when there is none or several."""
        keys = _customer_keys(order)
        found = {known[k] for k in keys if k in known}
        mine = {id(local[k]): local[k] for k in keys if k in local}
        if len(found) + len(mine) > 1:
            who = [str(cid) for cid, _ in sorted(found)] + ["new"] * len(mine)
            return (
                _column(keys[0][0]),
                f"customer_ref, email and phone point to different customers ({', '.join(who)})",
            )
        if found:
            order.customer_id, order.owner_id = found.pop()
            return None
        if mine:
            customer = next(iter(mine.values()))
        elif self.create_customers:
            customer = {"name": None, "ref": None, "identities": []}
            new.append(customer)
        else:
            name, value = keys[0]
            return (
                _column(name),
                f"no customer with {'external ref' if name == 'ref' else name} {value!r};"
                " pass --create-customers to create it",
            )
        order.new_customer = customer
        _remember(customer, order, local)
        return None

    def _create_customers(self, new: list[dict[str, Any]]) -> None:
        """Insert the customers this batch creates, with their identities."""
        if not new:
            return
        sql = self.sql
        ids = sql.ids("core_customer", len(new))
        rows, identities = [], []
        for cid, customer in zip(ids, new, strict=True):
            customer["id"] = cid
            name = customer["name"] or customer["ref"] or customer["identities"][0][1]
            rows.append(
                (cid, "person", name, customer["ref"], search_key(name), False, sql.now, sql.now, 1)
            )
            identities.extend((cid, c, v, sql.now) for c, v in customer["identities"])
        sql.insert(
            "core_customer",
            (
                "id",
                "kind",
                "display_name",
                "external_ref",
                "search_key",
                "archived",
                "created_at",
                "updated_at",
                "version",
            ),
            rows,
        )
        sql.insert(
            "core_customer_identity", ("customer_id", "channel", "value", "created_at"), identities
        )
        self.summary.customers_created += len(new)

    # products

    def _match_products(self, batch: list[_Order], reject: Reject) -> list[_Order]:
        """Find the batch's products by SKU (created when allowed); reject orders without."""
        known = self.products
        wanted = sorted({ln[1] for o in batch for ln in o.lines} - known.keys() - {None})
        for sku, pid, price, cost, code in self.sql.select_in(
            "SELECT sku, id, price_minor, cost_minor, currency FROM operational_product "
            "WHERE sku IN ({marks})",
            wanted,
        ):
            known[sku] = (pid, price, cost, code)
        missing = [s for s in wanted if s not in known]
        if missing and self.create_products:
            self._create_products(missing, batch)
            missing = []
        if not missing:
            return batch
        kept = []
        absent = set(missing)
        for order in batch:
            bad = next((ln for ln in order.lines if ln[1] in absent), None)
            if bad is None:
                kept.append(order)
            else:
                reject(
                    order,
                    bad[0],
                    "sku",
                    f"no product with SKU {bad[1]!r}; import it first (crm products import)"
                    " or pass --create-products",
                )
        return kept

    def _create_products(self, skus: list[str], batch: list[_Order]) -> None:
        """Products first seen in this batch, named and priced from their first line."""
        first: dict[str, tuple[_Line, str]] = {}
        wanted = set(skus)
        for order in batch:
            for ln in order.lines:
                if ln[1] in wanted and ln[1] not in first:
                    first[ln[1]] = (ln, order.currency)
        sql = self.sql
        rows = []
        for pid, sku in zip(sql.ids("operational_product", len(skus)), skus, strict=True):
            ln, code = first[sku]
            try:
                price = ln[4] if ln[4] is not None else _derived_price(ln) or 0
            except RowError:
                price = 0  # the line itself is rejected when its order is built
            rows.append(
                (pid, sku, ln[2] or sku, None, price, None, code, True, None, sql.now, sql.now, 1)
            )
            self.products[sku] = (pid, price, None, code)
        sql.insert("operational_product", _PRODUCT_COLUMNS, rows)
        self.summary.products_created += len(rows)

    # orders

    def _build(self, order: _Order, reject: Reject) -> _Built | None:
        """The order's line rows, total and cost; ``None`` (rejected) when a line is wrong."""
        if order.has_total:
            return _Built(order, [], order.lines[0][6] or 0, None)
        rows = []
        total = 0
        cost: int | None = 0
        code = order.currency
        products = self.products
        for ln in order.lines:
            line, sku, _, quantity, unit, discount, amount = ln
            pid, price, unit_cost, product_currency = products[sku]
            gross = quantity * (price if unit is None else unit)
            net = gross - discount
            if (
                (unit is None and (amount is not None or product_currency != code))
                or discount > gross
                or (amount is not None and amount != net)
                or net > orders.MAX_MINOR
            ):
                try:
                    unit, net = _checked_line(ln, price, product_currency, code)
                except RowError as exc:
                    reject(order, line, exc.field, str(exc))
                    return None
            rows.append((pid, quantity, price if unit is None else unit, discount, net))
            total += net
            if cost is not None:
                if unit_cost is None or product_currency != code:
                    cost = None
                else:
                    cost += quantity * unit_cost
        if total > orders.MAX_MINOR:
            reject(order, order.line, "amount", "the order's total is too large")
            return None
        return _Built(order, rows, total, cost)

    def _save(self, built: list[_Built], reject: Reject) -> None:
        """Insert new orders, update stored ones, reject a ref met again apart from its rows."""
        sql = self.sql
        refs = [b.order.ref for b in built]
        existing = {
            row[0]: row[1:]
            for row in sql.select_in(
                "SELECT ref, id, customer_id, placed_at, currency, channel, status, owner_id "
                "FROM operational_order WHERE ref IN ({marks})",
                refs,
            )
        }
        new: list[_Built] = []
        known: list[tuple[_Built, tuple]] = []
        seen: dict[str, int] = {}
        for b in built:
            ref = b.order.ref
            current = existing.get(ref)
            earlier = seen.get(ref)
            if earlier is None and current is not None and self._created_here(current[0]):
                earlier = 0
            if earlier is not None:
                where = f" (line {earlier})" if earlier else ""
                reject(
                    b.order,
                    b.order.line,
                    "order_ref",
                    f"order {ref} has rows earlier in the file{where}; the rows of an order "
                    "must follow each other",
                )
                continue
            seen[ref] = b.order.line
            if current is None:
                new.append(b)
            else:
                known.append((b, current))
        self._insert_orders(new)
        self._update_orders(known)

    def _created_here(self, order_id: int) -> bool:
        """Whether this import created the order (its ids are allocated in rising order)."""
        return self.first_new_order is not None and order_id >= self.first_new_order

    def _insert_orders(self, new: list[_Built]) -> None:
        """Insert new orders and their lines (two executemany calls)."""
        if not new:
            return
        sql = self.sql
        ids = sql.ids("operational_order", len(new))
        if self.first_new_order is None:
            self.first_new_order = ids[0]
        now = sql.now
        order_rows, line_rows = [], []
        for oid, b in zip(ids, new, strict=True):
            o = b.order
            order_rows.append(
                (
                    oid,
                    o.ref,
                    o.customer_id,
                    o.channel,
                    o.status,
                    o.placed_at,
                    o.currency,
                    b.total,
                    b.cost,
                    o.owner_id,
                    now,
                    1,
                )
            )
            line_rows += [(oid, *line) for line in b.lines]
        sql.insert("operational_order", _ORDER_COLUMNS, order_rows)
        sql.insert("operational_order_line", _LINE_COLUMNS, line_rows)
        if self.created_log is not None:
            self.created_log.write("".join(f"{oid}\n" for oid in ids))
        self.summary.created += len(new)
        self.summary.lines += len(line_rows)

    def _update_orders(self, known: list[tuple[_Built, tuple]]) -> None:
        """Bring stored orders to what the file says; their lines are replaced if they differ."""
        if not known:
            return
        sql = self.sql
        ids = [current[0] for _, current in known]
        stored: dict[int, list[tuple]] = {i: [] for i in ids}
        for row in sql.select_in(
            "SELECT order_id, product_id, quantity, unit_price_minor, discount_minor, "
            "amount_minor FROM operational_order_line WHERE order_id IN ({marks}) "
            "ORDER BY order_id, id",
            ids,
        ):
            stored[row[0]].append(tuple(row[1:]))
        changed, replaced, line_rows = [], [], []
        for b, (oid, customer_id, placed_at, code, channel, status, owner_id) in known:
            o = b.order
            same_lines = stored[oid] == b.lines
            if same_lines and (customer_id, placed_at, code, channel, status) == (
                o.customer_id,
                o.placed_at,
                o.currency,
                o.channel,
                o.status,
            ):
                self.summary.unchanged += 1
                continue
            owner = owner_id if customer_id == o.customer_id else o.owner_id
            changed.append(
                (
                    o.customer_id,
                    o.placed_at,
                    o.currency,
                    o.channel,
                    o.status,
                    b.total,
                    b.cost,
                    owner,
                    oid,
                )
            )
            if not same_lines:
                replaced.append(oid)
                line_rows.extend((oid, *line) for line in b.lines)
        if changed:
            sets = ", ".join(
                f"{name} = {sql.mark}"
                for name in (
                    "customer_id",
                    "placed_at",
                    "currency",
                    "channel",
                    "status",
                    "total_minor",
                    "cost_minor",
                    "owner_id",
                )
            )
            sql.conn.exec_driver_sql(
                f"UPDATE operational_order SET {sets}, version = version + 1 WHERE id = {sql.mark}",
                changed,
            )
        if replaced:
            sql.execute_in(
                "DELETE FROM operational_order_line WHERE order_id IN ({marks})", replaced
            )
            sql.insert("operational_order_line", _LINE_COLUMNS, line_rows)
            self.summary.lines += len(line_rows)
        self.summary.updated += len(changed)


def _column(key: str) -> str:
    """The CSV column of a customer key."""
    return "customer_ref" if key == "ref" else key


def _customer_keys(order: _Order) -> list[tuple[str, str]]:
    keys = []
    if order.customer_ref:
        keys.append(("ref", order.customer_ref))
    if order.email:
        keys.append(("email", order.email))
    if order.phone:
        keys.append(("phone", order.phone))
    return keys


def _remember(customer: dict[str, Any], order: _Order, local: dict[tuple[str, str], Any]) -> None:
    """Give a customer created by this batch the order's ref, name and identities."""
    if order.customer_ref and customer["ref"] is None:
        customer["ref"] = order.customer_ref
    customer["name"] = customer["name"] or order.customer_name
    for channel in ("email", "phone"):
        value = getattr(order, channel)
        if value and (channel, value) not in customer["identities"]:
            customer["identities"].append((channel, value))
    for key in _customer_keys(order):
        local[key] = customer


def _derived_price(ln: _Line) -> int | None:
    """The unit price a line's amount implies, when only the amount was given."""
    _, _, _, quantity, _, discount, amount = ln
    if amount is None:
        return None
    gross = amount + discount
    if gross % quantity:
        raise RowError(
            "unit_price",
            "unit_price is required: amount + discount is not a multiple of the quantity",
        )
    return gross // quantity


def _checked_line(ln: _Line, price: int, product_currency: str, code: str) -> tuple[int, int]:
    """The unit price and amount of a line off the common path, or the ``RowError``."""
    _, sku, _, quantity, unit, discount, amount = ln
    if unit is None:
        unit = _derived_price(ln)
    if unit is None:
        if product_currency != code:
            raise RowError(
                "unit_price",
                f"unit_price is required: product {sku!r} is priced in {product_currency}, "
                f"the order is in {code}",
            )
        unit = price
    try:
        net = orders.line_amount(quantity, unit, discount)
    except orders.InvalidField as exc:
        raise RowError(exc.field.removesuffix("_minor"), str(exc)) from None
    if amount is not None and amount != net:
        raise RowError(
            "amount",
            f"amount {Money(amount, code).to_decimal()} differs from quantity × unit_price"
            f" − discount = {Money(net, code).to_decimal()}",
        )
    return unit, net


@contextmanager
def _without_cycle_collector() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block.

    An import allocates millions of short-lived lists and tuples that a batch keeps alive long
    enough to be promoted, so the collector's passes walked the whole heap again and again
    (10 to 17% of a million-line import) while finding no cycles: the loop makes none, and
    reference counting frees everything it allocates.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- running an import -----------------------------------------------------------------------


class _Run:
    """One import run: rejects rows, owns the transaction, commits or rolls back."""

    def __init__(
        self,
        summary: Summary,
        rejected: RejectedWriter,
        on_error: str,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.summary, self.rejected, self.on_error = summary, rejected, on_error
        self.progress = progress

    @property
    def blocked(self) -> bool:
        """An abort-mode import with a bad row writes nothing more."""
        return bool(self.summary.rejected) and self.on_error == "abort"

    def reject(self, line: int, raw: list[str], field_name: str, message: str) -> None:
        """Count a bad row and report it with its line and field."""
        self.summary.rejected += 1
        where = f"line {line}" + (f", {field_name}" if field_name else "")
        self.summary.errors.append({"line": line, "field": field_name, "error": message})
        self.rejected.write(line, f"{where}: {message}", raw)

    def report(self, rows: int) -> None:
        """Report progress: ``rows`` rows read."""
        if self.progress:
            self.progress(rows)

    def transaction(
        self, crm: Crm, work: Callable[[Connection], None], dry_run: bool, model: str, source: str
    ) -> None:
        """Run ``work`` in one transaction; commit unless dry run or an abort-mode rejection."""
        summary = self.summary
        with crm.db.writer.connect() as conn:
            transaction = conn.begin()
            try:
                if conn.dialect.name == "sqlite":
                    # A bigger page cache for this connection: index inserts stay in memory.
                    conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
                with _without_cycle_collector():
                    work(conn)
                if self.blocked:
                    summary.clear_counts()
                    summary.written = False
                    transaction.rollback()
                elif dry_run:
                    summary.written = False
                    transaction.rollback()
                else:
                    self._audit(conn, model, source)
                    transaction.commit()
            except BaseException:
                if transaction.is_active:
                    transaction.rollback()
                self.rejected.discard()
                raise
            finally:
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("PRAGMA cache_size = -2000")  # SQLite's default
        summary.rejected_file = self.rejected.close()

    def _audit(self, conn: Connection, model: str, source: str) -> None:
        from sqlalchemy.orm import Session

        counts = {
            k: v
            for k, v in self.summary.__dict__.items()
            if isinstance(v, int) and not isinstance(v, bool)
        }
        with Session(bind=conn) as session:
            audit.record(
                session, "import", model, None, detail=f"import from {source}", after=counts
            )


def _start(
    handle: IO[str],
    mapping: dict[str, str] | None,
    columns: tuple[str, ...],
    required: tuple[tuple[str, ...], ...],
    on_error: str,
) -> tuple[Iterator[tuple[int, list[str]]], list[str], list[str | None]]:
    """The row iterator, the raw header and the fields of the columns."""
    if on_error not in ("abort", "skip"):
        raise ImportFailed("--on-error must be abort or skip")
    rows = csvimport.rows(handle)
    try:
        _, raw_header = next(rows)
    except StopIteration:
        raise ImportFailed("the file is empty") from None
    return rows, raw_header, csvimport.header(raw_header, mapping or {}, columns, required)


def import_orders(
    crm: Crm,
    handle: IO[str],
    *,
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
    on_error: str = "abort",
    rejected_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
    source: str = "csv",
    create_customers: bool = False,
    create_products: bool = True,
    notify: bool = False,
) -> OrderSummary:
    """Import orders from a CSV text stream, one row per order line (see the module docstring).

    With ``notify``, ``order_placed`` is called for each created order after the commit.
    """
    started = time.perf_counter()
    rows, raw_header, header = _start(
        handle,
        mapping,
        ORDER_COLUMNS,
        (("order_ref",), ("customer_ref", "email", "phone"), ("placed_at",), ("sku", "amount")),
        on_error,
    )
    summary = OrderSummary(dry_run=dry_run)
    run = _Run(summary, RejectedWriter(rejected_path, raw_header), on_error, progress)
    log = tempfile.TemporaryFile("w+", encoding="ascii") if notify else nullcontext()  # noqa: SIM115
    with log as created:

        def work(conn: Connection) -> None:
            writer = _OrderWriter(conn, summary, create_customers, create_products, created)
            _OrderImport(run, writer, header, crm, conn.dialect.name == "sqlite").read(rows)

        run.transaction(crm, work, dry_run, "operational.order", source)
        if notify and summary.written and created is not None:
            summary.notified = _notify(crm, created)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


class _OrderImport:
    """Feeds the rows to the parser and the finished orders, in batches, to the writer."""

    def __init__(
        self, run: _Run, writer: _OrderWriter, header: list[str | None], crm: Crm, sqlite: bool
    ) -> None:
        self.run, self.writer = run, writer
        self.parser = _OrderParser(header, crm, sqlite, run.reject)
        self.batch: list[_Order] = []
        self.size = 0
        self.line = 1

    def read(self, rows: Iterator[tuple[int, list[str]]]) -> None:
        """Every row of the file, then the last order and batch."""
        feed = self.parser.feed
        for line, raw in rows:
            self.line = line
            done = feed(line, raw)
            if done is not None:
                self.add(done)
        last = self.parser.finish()
        if last is not None:
            self.add(last)
        self.flush()

    def add(self, order: _Order) -> None:
        """A finished order: rejected now if bad, else queued for the writer."""
        error = order.errors[0] if order.errors else _shape_error(order)
        if error is not None:
            self.reject(order, *error)
        else:
            self.batch.append(order)
            self.size += len(order.rows)
            if self.size >= BATCH:
                self.flush()

    def reject(self, order: _Order, line: int, field_name: str, message: str) -> None:
        """Reject every row of ``order``: bad rows with their reasons, the others with its."""
        own = {at: (name, text) for at, name, text in order.errors}
        own.setdefault(line, (field_name, message))
        for at, raw in order.rows:
            if at in own:
                self.run.reject(at, raw, *own[at])
            else:
                self.run.reject(
                    at, raw, "", f"not written with its order {order.ref} (line {line}: {message})"
                )

    def flush(self) -> None:
        """Write the queued orders (unless an abort-mode import already failed)."""
        if not self.batch:
            return
        if not self.run.blocked:
            self.writer.write(self.batch, self.reject)
        self.run.report(self.line - 1)
        self.batch, self.size = [], 0


def _notify(crm: Crm, created: IO[str]) -> int:
    """Call ``order_placed`` for each order the import created, reading them in chunks."""
    created.seek(0)
    count = 0
    chunk: list[int] = []
    for text in created:
        chunk.append(int(text))
        if len(chunk) == 500:
            count += _notify_chunk(crm, chunk)
            chunk = []
    return count + (_notify_chunk(crm, chunk) if chunk else 0)


def _notify_chunk(crm: Crm, ids: list[int]) -> int:
    with crm.db.session() as session:
        found = list(session.scalars(select(Order).where(Order.id.in_(ids)).order_by(Order.id)))
        lines: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        for row in session.execute(
            select(OrderLine, Product.sku)
            .outerjoin(Product, Product.id == OrderLine.product_id)
            .where(OrderLine.order_id.in_(ids))
            .order_by(OrderLine.id)
        ):
            line, sku = row
            lines[line.order_id].append(
                {name: getattr(line, name) for name in orders.PAYLOAD_LINE_FIELDS if name != "sku"}
                | {"sku": sku}
            )
    for order in found:
        crm.notify("order_placed", order=orders.placed_payload(order, lines[order.id]))
    return len(found)


# --- products --------------------------------------------------------------------------------


@dataclass(slots=True)
class _ProductRow:
    """One parsed product row; ``None`` and empty texts keep what an existing product has."""

    line: int
    raw: list[str]
    sku: str
    values: dict[str, Any]
    price: str
    cost: str
    upgrade_to: str | None


class _ProductParser:
    """Checks product rows (amounts are read by the writer, in the product's currency)."""

    def __init__(self, header: list[str | None]) -> None:
        self.columns = [(name, i) for i, name in enumerate(header) if name]
        self.width = len(header)

    def parse(self, line: int, raw: list[str]) -> _ProductRow:
        """The row, or ``RowError`` naming the field at fault."""
        if len(raw) != self.width:
            raise RowError("", f"has {len(raw)} cells, the header has {self.width}")
        cells = {name: raw[i].strip() for name, i in self.columns}
        sku = _text("sku", cells["sku"])
        if sku is None:
            raise RowError("sku", "sku is required")
        code = cells.get("currency", "")
        upgrade = _text("upgrade_to", cells.get("upgrade_to", ""))
        if upgrade == sku:
            raise RowError("upgrade_to", "a product cannot upgrade to itself")
        values = {
            "name": _text("name", cells.get("name", "")),
            "category": _text("category", cells.get("category", "")),
            "currency": _currency(code, "") or None,
            "active": _flag(cells.get("active", "")),
        }
        return _ProductRow(
            line, raw, sku, values, cells.get("price", ""), cells.get("cost", ""), upgrade
        )


def _flag(text: str) -> bool | None:
    if not text:
        return None
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise RowError("active", f"active must be true or false, not {text!r}")


_PRODUCT_STATE = ("name", "category", "price_minor", "cost_minor", "currency", "active")


class _ProductWriter:
    """Creates or updates a batch of products, then links their upgrades."""

    def __init__(self, conn: Connection, summary: Summary, default_currency: str) -> None:
        self.sql = _Sql(conn)
        self.summary = summary
        self.default_currency = default_currency
        #: rows whose upgrade target comes later in the file (forward references; rare)
        self.pending: list[_ProductRow] = []

    def write(self, batch: list[_ProductRow], reject: Callable[..., None]) -> None:
        """Write one batch (its SKUs are unique), then link the upgrades it names."""
        sql = self.sql
        current = {
            row[0]: row[1:]
            for row in sql.select_in(
                "SELECT sku, id, name, category, price_minor, cost_minor, currency, active "
                "FROM operational_product WHERE sku IN ({marks})",
                [r.sku for r in batch],
            )
        }
        new, changed, outcome = [], [], {}
        for row in batch:
            stored = current.get(row.sku)
            before = None if stored is None else dict(zip(_PRODUCT_STATE, stored[1:], strict=True))
            try:
                after = self._state(row, before)
            except RowError as exc:
                reject(row.line, row.raw, exc.field, str(exc))
                continue
            if stored is None:
                new.append((row.sku, after))
                outcome[row.sku] = "created"
            elif after == before:
                outcome[row.sku] = "unchanged"
            else:
                outcome[row.sku] = "updated"
                changed.append((*after.values(), sql.now, stored[0]))
        self._insert(new)
        if changed:
            sets = ", ".join(f"{k} = {sql.mark}" for k in (*_PRODUCT_STATE, "updated_at"))
            sql.conn.exec_driver_sql(
                f"UPDATE operational_product SET {sets}, version = version + 1 "
                f"WHERE id = {sql.mark}",
                changed,
            )
        linked = [r for r in batch if r.upgrade_to and r.sku in outcome]
        unknown, relinked = self._link(linked)
        self.pending.extend(unknown)
        for sku in relinked:
            if outcome[sku] == "unchanged":
                outcome[sku] = "updated"
        for result in outcome.values():
            setattr(self.summary, result, getattr(self.summary, result) + 1)

    def _state(self, row: _ProductRow, before: dict[str, Any] | None) -> dict[str, Any]:
        """The product's fields after this row: the row's values over the stored ones."""
        if before is None:
            if row.values["name"] is None:
                raise RowError("name", "name is required for a new product")
            before = dict.fromkeys(_PRODUCT_STATE)
            before.update(price_minor=0, currency=self.default_currency, active=True)
        else:
            before["active"] = bool(before["active"])
        after = {k: before[k] if row.values.get(k) is None else row.values[k] for k in before}
        for name in ("price", "cost"):
            cell = getattr(row, name)
            if cell:
                after[f"{name}_minor"] = parse_minor(cell, after["currency"], name)
        return after

    def _insert(self, new: list[tuple[str, dict[str, Any]]]) -> None:
        sql = self.sql
        rows = [
            (pid, sku, *state.values(), None, sql.now, sql.now, 1)
            for pid, (sku, state) in zip(sql.ids("operational_product", len(new)), new, strict=True)
        ]
        sql.insert(
            "operational_product",
            ("id", "sku", *_PRODUCT_STATE, "upgrade_to_id", "created_at", "updated_at", "version"),
            rows,
        )

    def _link(self, rows: list[_ProductRow]) -> tuple[list[_ProductRow], list[str]]:
        """Point products at their upgrades; returns the rows whose target is unknown and
        the SKUs whose upgrade changed."""
        if not rows:
            return [], []
        sql = self.sql
        skus = sorted({r.sku for r in rows} | {r.upgrade_to for r in rows if r.upgrade_to})
        found = {
            sku: (pid, upgrade)
            for sku, pid, upgrade in sql.select_in(
                "SELECT sku, id, upgrade_to_id FROM operational_product WHERE sku IN ({marks})",
                skus,
            )
        }
        unknown, relinked, links = [], [], []
        for row in rows:
            target = found.get(row.upgrade_to or "")
            if target is None:
                unknown.append(row)
                continue
            pid, upgrade = found[row.sku]
            if upgrade != target[0]:
                links.append((target[0], sql.now, pid))
                relinked.append(row.sku)
        if links:
            sql.conn.exec_driver_sql(
                f"UPDATE operational_product SET upgrade_to_id = {sql.mark}, updated_at = "
                f"{sql.mark}, version = version + 1 WHERE id = {sql.mark}",
                links,
            )
        return unknown, relinked

    def finish(self, reject: Callable[..., None]) -> None:
        """Link the forward references; a target still unknown rejects its row."""
        unknown, _ = self._link(self.pending)
        for row in unknown:
            reject(
                row.line,
                row.raw,
                "upgrade_to",
                f"no product with SKU {row.upgrade_to!r} (the product was imported without"
                " its upgrade)",
            )
        self.pending = []


class _ProductImport:
    """Feeds product rows, in batches of distinct SKUs, to the writer."""

    def __init__(self, run: _Run, writer: _ProductWriter, parser: _ProductParser) -> None:
        self.run, self.writer, self.parser = run, writer, parser
        self.batch: list[_ProductRow] = []
        self.skus: set[str] = set()
        self.line = 1

    def read(self, rows: Iterator[tuple[int, list[str]]]) -> None:
        """Every row of the file; then the upgrades that pointed forward."""
        for line, raw in rows:
            self.line = line
            if not any(raw):
                continue
            try:
                row = self.parser.parse(line, raw)
            except RowError as exc:
                self.run.reject(line, raw, exc.field, str(exc))
                continue
            # A SKU met twice is written in order: the batch holding it first goes first.
            if row.sku in self.skus or len(self.batch) >= BATCH:
                self.flush()
            self.batch.append(row)
            self.skus.add(row.sku)
        self.flush()
        if not self.run.blocked:
            self.writer.finish(self.run.reject)

    def flush(self) -> None:
        """Write the pending rows (unless an abort-mode import already failed)."""
        if self.batch and not self.run.blocked:
            self.writer.write(self.batch, self.run.reject)
        self.run.report(self.line - 1)
        self.batch, self.skus = [], set()


def import_products(
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
    """Import products from a CSV text stream, matched by SKU (created or updated)."""
    started = time.perf_counter()
    rows, raw_header, header = _start(handle, mapping, PRODUCT_COLUMNS, (("sku",),), on_error)
    summary = Summary(dry_run=dry_run)
    run = _Run(summary, RejectedWriter(rejected_path, raw_header), on_error, progress)

    def work(conn: Connection) -> None:
        writer = _ProductWriter(conn, summary, crm.settings.default_currency)
        _ProductImport(run, writer, _ProductParser(header)).read(rows)

    run.transaction(crm, work, dry_run, "operational.product", source)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary
