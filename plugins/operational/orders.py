"""Products and orders, one at a time (the API's path): the transaction history other modules read.

Money is an integer count of the currency's minor unit, never a float. A line's amount is
``quantity * unit_price - discount``; an order's ``total_minor`` is the sum of its lines, or an
order-level amount when the lines are unknown. ``cost_minor`` is known only when every line's
product has a cost in the order's currency. Creating an order emits ``order_placed`` once the
transaction commits. Bulk paths (``importer``) write through SQL but use the same rules.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, select, tuple_
from sqlalchemy.orm import Session

from core import events, records
from core.customers.models import Customer
from core.db import utcnow
from core.i18n import N_
from core.money import minor_digits
from plugins.operational import collaboration, webhooks
from plugins.operational.models import ORDER_STATUSES, Order, OrderLine, Product

if TYPE_CHECKING:
    from core.auth import SignedIn
    from core.runtime import Crm

#: The statuses an order may move to from each status; ``cancelled`` and ``returned`` are final.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "placed": ("paid", "shipped", "cancelled"),
    "paid": ("shipped", "cancelled"),
    "shipped": ("delivered", "returned"),
    "delivered": ("returned",),
    "cancelled": (),
    "returned": (),
}
MAX_MINOR = 2**63 - 1
MAX_QUANTITY = 2**31 - 1
COUNT_CAP = 10_000
ORDER_SORTS = ("-placed_at", "-id")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_LIMITS = {"sku": 64, "name": 200, "category": 100, "ref": 64, "channel": 30}
PAYLOAD_LINE_FIELDS = (
    "product_id",
    "sku",
    "quantity",
    "unit_price_minor",
    "discount_minor",
    "amount_minor",
)
PRODUCT_FIELDS = (
    "sku",
    "name",
    "category",
    "price_minor",
    "cost_minor",
    "currency",
    "active",
    "upgrade_to_id",
)


class InvalidField(ValueError):
    """A value that cannot be accepted; ``field`` names it, ``line`` the order line (0-based)."""

    def __init__(self, field: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.field, self.line = field, line


class SkuTaken(Exception):
    """The SKU belongs to another product."""

    def __init__(self, sku: str, product_id: int) -> None:
        super().__init__(f"SKU {sku!r} already belongs to product {product_id}")
        self.sku, self.product_id = sku, product_id


class RefTaken(Exception):
    """The order reference belongs to another order."""

    def __init__(self, ref: str, order_id: int) -> None:
        super().__init__(f"order reference {ref!r} already belongs to order {order_id}")
        self.ref, self.order_id = ref, order_id


class StaleVersion(Exception):
    """The client changed a product or an order from a version that is no longer current."""

    def __init__(self, record: Product | Order) -> None:
        super().__init__(f"record {record.id} is at version {record.version}")
        self.record = record


# --- fields ----------------------------------------------------------------------------------


def text(field: str, value: str | None, required: bool = False) -> str | None:
    """Trimmed text, ``None`` when empty; length and control characters checked."""
    cleaned = " ".join(value.split()) if value else ""
    if not cleaned:
        if required:
            raise InvalidField(field, f"{field} is required")
        return None
    limit = _TEXT_LIMITS.get(field, 200)
    if len(cleaned) > limit:
        raise InvalidField(field, f"{field} is longer than {limit} characters")
    if _CONTROL.search(cleaned):
        raise InvalidField(field, f"{field} contains control characters")
    return cleaned


def currency(value: str | None, crm: Crm) -> str:
    """An ISO 4217 code, upper-cased; the setting ``default_currency`` when empty."""
    code = (value or "").strip().upper() or crm.settings.default_currency
    try:
        minor_digits(code)
    except ValueError:
        raise InvalidField("currency", f"unknown currency {value!r}") from None
    return code


def minor(field: str, value: Any, required: bool = True) -> int | None:
    """A money amount in minor units: a whole number from 0 (floats are refused)."""
    if value is None:
        if required:
            raise InvalidField(field, f"{field} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(field, f"{field} must be a whole number of minor units")
    if not 0 <= value <= MAX_MINOR:
        raise InvalidField(field, f"{field} must be between 0 and {MAX_MINOR}")
    return value


def quantity(value: Any) -> int:
    """A line's quantity: a whole number from 1."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QUANTITY:
        raise InvalidField("quantity", "quantity must be a whole number from 1")
    return value


def status(value: str) -> str:
    """One of the order statuses."""
    if value not in ORDER_STATUSES:
        raise InvalidField("status", f"status must be one of {', '.join(ORDER_STATUSES)}")
    return value


def line_amount(qty: int, unit_price_minor: int, discount_minor: int) -> int:
    """A line's net amount: ``quantity * unit_price - discount``; never below zero."""
    gross = qty * unit_price_minor
    if discount_minor > gross:
        raise InvalidField("discount_minor", "the discount is larger than the line's amount")
    if gross - discount_minor > MAX_MINOR:
        raise InvalidField("quantity", "the line's amount is too large")
    return gross - discount_minor


def aware(value: dt.datetime, crm: Crm) -> dt.datetime:
    """``value`` in UTC; a naive time is read in the setting ``timezone``."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=ZoneInfo(crm.settings.timezone))
    return value.astimezone(dt.UTC)


# --- products --------------------------------------------------------------------------------


def product_as_dict(product: Product) -> dict[str, Any]:
    """The product as plain data (what the API returns)."""
    return {
        "id": product.id,
        **{name: getattr(product, name) for name in PRODUCT_FIELDS},
        "created_at": product.created_at,
        "updated_at": product.updated_at,
        "version": product.version,
    }


def _clean_product(
    session: Session, crm: Crm, data: dict[str, Any], current: Product | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    creating = current is None
    for field in ("sku", "name"):
        if field in data or creating:
            out[field] = text(field, data.get(field), required=True)
    if "category" in data:
        out["category"] = text("category", data["category"])
    if "price_minor" in data or creating:
        out["price_minor"] = minor("price_minor", data.get("price_minor", 0))
    if "cost_minor" in data:
        out["cost_minor"] = minor("cost_minor", data["cost_minor"], required=False)
    if "currency" in data or creating:
        out["currency"] = currency(data.get("currency"), crm)
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise InvalidField("active", "active must be true or false")
        out["active"] = data["active"]
    if data.get("upgrade_to_id") is not None:
        _check_upgrade(session, data["upgrade_to_id"], None if current is None else current.id)
    if "upgrade_to_id" in data:
        out["upgrade_to_id"] = data["upgrade_to_id"]
    if out.get("sku") and (current is None or out["sku"] != current.sku):
        holder = session.scalar(select(Product.id).where(Product.sku == out["sku"]))
        if holder is not None:
            raise SkuTaken(out["sku"], holder)
    return out


def _check_upgrade(session: Session, target_id: int, product_id: int | None) -> None:
    """The upgrade target exists and does not lead back to the product."""
    seen: set[int] = set()
    step: int | None = target_id
    while step is not None and step not in seen:
        if step == product_id:
            raise InvalidField("upgrade_to_id", "a product cannot upgrade to itself")
        seen.add(step)
        found = session.execute(
            select(Product.id, Product.upgrade_to_id).where(Product.id == step)
        ).first()
        if found is None:
            raise InvalidField("upgrade_to_id", f"no product {step}")
        step = found.upgrade_to_id


def create_product(session: Session, crm: Crm, data: dict[str, Any]) -> Product:
    """Create a product; ``InvalidField`` names a bad field, ``SkuTaken`` a used SKU."""
    values = _clean_product(session, crm, data, None)
    product = Product(**values)
    session.add(product)
    session.flush()
    return product


def update_product(
    session: Session, crm: Crm, product: Product, data: dict[str, Any], expected_version: int
) -> dict[str, tuple[Any, Any]]:
    """Apply ``data`` if ``product`` is still at ``expected_version``; returns the changes."""
    if product.version != expected_version:
        raise StaleVersion(product)
    values = _clean_product(session, crm, data, product)
    changes = {
        name: (getattr(product, name), value)
        for name, value in values.items()
        if getattr(product, name) != value
    }
    for name, (_, value) in changes.items():
        setattr(product, name, value)
    if changes:
        session.flush()
    return changes


# --- orders ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    """A line as a client gives it; without ``unit_price_minor`` the product's price is used."""

    product_id: int
    quantity: int = 1
    unit_price_minor: int | None = None
    discount_minor: int = 0


def new_ref() -> str:
    """A fresh order reference for orders created without one: ``SO-20260115-9F2C4A1B``."""
    return f"SO-{utcnow():%Y%m%d}-{secrets.token_hex(4).upper()}"


def _line(index: int, given: LineInput, product: Product | None, code: str) -> dict[str, Any]:
    """One checked line with its amount (``InvalidField.line`` is ``index``)."""
    try:
        if product is None:
            raise InvalidField("product_id", f"no product {given.product_id}")
        qty = quantity(given.quantity)
        discount = minor("discount_minor", given.discount_minor)
        price = minor("unit_price_minor", given.unit_price_minor, required=False)
        if price is None:
            if product.currency != code:
                raise InvalidField(
                    "unit_price_minor",
                    f"required: product {product.sku!r} is priced in {product.currency}, "
                    f"the order is in {code}",
                )
            price = product.price_minor
        amount = line_amount(qty, price, discount)
    except InvalidField as exc:
        raise InvalidField(exc.field, str(exc), index) from None
    return {
        "product_id": product.id,
        "sku": product.sku,
        "quantity": qty,
        "unit_price_minor": price,
        "discount_minor": discount,
        "amount_minor": amount,
    }


def _cost(lines: Sequence[dict[str, Any]], products: dict[int, Product], code: str) -> int | None:
    """The order's cost when every line's product has a cost in the order's currency."""
    total = 0
    for line in lines:
        product = products[line["product_id"]]
        if product.cost_minor is None or product.currency != code:
            return None
        total += line["quantity"] * product.cost_minor
    return total


def create_order(
    session: Session,
    crm: Crm,
    *,
    customer_id: int,
    lines: Sequence[LineInput] = (),
    total_minor: int | None = None,
    ref: str | None = None,
    placed_at: dt.datetime | None = None,
    currency_code: str | None = None,
    channel: str | None = None,
    order_status: str = "placed",
    owner_id: int | None = None,
    actor_id: int | None = None,
) -> Order:
    """Create an order with its lines (or an order-level ``total_minor`` when none are known).

    Without ``owner_id`` the order belongs to the customer's owner, so it follows the
    customer's record rule. ``order_placed`` is emitted, and the order announced
    (``record_event``, by ``actor_id``), after the transaction commits; the ``order.placed``
    webhook event is published in it.
    """
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise InvalidField("customer_id", f"no customer {customer_id}")
    code = currency(currency_code, crm)
    ref = text("ref", ref) or new_ref()
    holder = session.scalar(select(Order.id).where(Order.ref == ref))
    if holder is not None:
        raise RefTaken(ref, holder)
    products = _products(session, [line.product_id for line in lines])
    checked = [_line(i, line, products.get(line.product_id), code) for i, line in enumerate(lines)]
    total, cost = _totals(checked, products, code, total_minor)
    order = Order(
        ref=ref,
        customer_id=customer_id,
        channel=text("channel", channel),
        status=status(order_status),
        placed_at=aware(placed_at, crm) if placed_at else utcnow(),
        currency=code,
        total_minor=total,
        cost_minor=cost,
        owner_id=owner_id if owner_id is not None else customer.owner_id,
    )
    session.add(order)
    session.flush()
    session.add_all(
        OrderLine(order_id=order.id, **{k: v for k, v in line.items() if k != "sku"})
        for line in checked
    )
    session.flush()
    events.emit(session, crm, "order_placed", order=placed_payload(order, checked))
    webhooks.publish_order_placed(session, crm, order, checked)
    collaboration.announce(
        session, crm, collaboration.ORDER, order, "placed", N_("Order placed"), actor_id=actor_id
    )
    return order


def _products(session: Session, ids: Iterable[int]) -> dict[int, Product]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(wanted)))}


def _totals(
    lines: Sequence[dict[str, Any]],
    products: dict[int, Product],
    code: str,
    total_minor: int | None,
) -> tuple[int, int | None]:
    """The order's total and cost from its lines, or its order-level amount."""
    if not lines:
        return minor("total_minor", total_minor), None
    total = sum(line["amount_minor"] for line in lines)
    if total_minor is not None and total_minor != total:
        raise InvalidField(
            "total_minor", f"total_minor {total_minor} differs from the sum of the lines, {total}"
        )
    if total > MAX_MINOR:
        raise InvalidField("total_minor", "the order's total is too large")
    return total, _cost(lines, products, code)


def set_status(
    session: Session, crm: Crm, order: Order, new_status: str, expected_version: int
) -> bool:
    """Move ``order`` to ``new_status`` if allowed; False when it already has that status."""
    if order.version != expected_version:
        raise StaleVersion(order)
    status(new_status)
    if new_status == order.status:
        return False
    allowed = TRANSITIONS[order.status]
    if new_status not in allowed:
        then = f"it can become {', '.join(allowed)}" if allowed else "that status is final"
        raise InvalidField(
            "status", f"an order cannot go from {order.status} to {new_status}; {then}"
        )
    order.status = new_status
    session.flush()
    return True


def lines_of(session: Session, order_id: int) -> list[dict[str, Any]]:
    """The order's lines, in order, with their products' SKUs."""
    rows = session.execute(
        select(
            OrderLine.id,
            OrderLine.product_id,
            Product.sku,
            OrderLine.quantity,
            OrderLine.unit_price_minor,
            OrderLine.discount_minor,
            OrderLine.amount_minor,
        )
        .outerjoin(Product, Product.id == OrderLine.product_id)
        .where(OrderLine.order_id == order_id)
        .order_by(OrderLine.id)
    )
    return [dict(row._mapping) for row in rows]


def placed_payload(order: Order, lines: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What ``order_placed`` receives (see ``published_hooks``)."""
    return {
        **{
            name: getattr(order, name)
            for name in (
                "id",
                "ref",
                "customer_id",
                "placed_at",
                "currency",
                "total_minor",
                "channel",
                "status",
            )
        },
        "lines": [{key: line[key] for key in PAYLOAD_LINE_FIELDS} for line in lines],
    }


def order_as_dict(order: Order, lines: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The order as plain data, with ``lines`` (as :func:`lines_of` gives them) if given."""
    data = {
        name: getattr(order, name)
        for name in (
            "id",
            "ref",
            "customer_id",
            "placed_at",
            "currency",
            "total_minor",
            "cost_minor",
            "channel",
            "status",
            "owner_id",
            "created_at",
            "version",
        )
    }
    if lines is not None:
        data["lines"] = [
            {
                key: line.get(key)
                for key in (
                    "id",
                    "product_id",
                    "sku",
                    "quantity",
                    "unit_price_minor",
                    "discount_minor",
                    "amount_minor",
                )
            }
            for line in lines
        ]
    return data


# --- listing ---------------------------------------------------------------------------------


class CursorError(ValueError):
    """A cursor that this listing did not produce."""


@dataclass
class OrderFilters:
    """What to list; ``visible`` is the user's record rule (:func:`visible_condition`)."""

    customer_id: int | None = None
    status: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    visible: Any = None


def visible_condition(crm: Crm, user: SignedIn) -> ColumnElement[bool] | None:
    """The orders ``user`` may see: those of customers they see (``None``: all)."""
    return records.visible(
        crm,
        user,
        "operational.order",
        owner_column=Order.owner_id,
        customer_column=Order.customer_id,
    )


def filtered_orders(filters: OrderFilters) -> Select[tuple[Order]]:
    """A query for the orders matching ``filters``, unordered."""
    conditions: list[Any] = []
    if filters.customer_id is not None:
        conditions.append(Order.customer_id == filters.customer_id)
    if filters.status:
        conditions.append(Order.status == filters.status)
    if filters.since is not None:
        conditions.append(Order.placed_at >= filters.since)
    if filters.until is not None:
        conditions.append(Order.placed_at < filters.until)
    if filters.visible is not None:
        conditions.append(filters.visible)
    return select(Order).where(*conditions)


def _encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> tuple[dt.datetime | None, int]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if sort == "-id" and isinstance(values, list) and len(values) == 1:
            values = [None, *values]
        if not isinstance(values, list) or len(values) != 2 or not isinstance(values[1], int):
            raise ValueError
        placed = dt.datetime.fromisoformat(values[0]) if sort == "-placed_at" else None
        if placed is not None and placed.tzinfo is None:
            raise ValueError
    except (ValueError, TypeError, UnicodeDecodeError):
        raise CursorError("cursor is not valid for this sort") from None
    return placed, values[1]


def page_orders(
    session: Session,
    filters: OrderFilters,
    limit: int = 50,
    cursor: str | None = None,
    sort: str = "-placed_at",
) -> tuple[list[Order], str | None]:
    """One keyset page of orders, newest first, and the next page's cursor (or ``None``)."""
    if sort not in ORDER_SORTS:
        raise ValueError(f"sort must be one of {', '.join(ORDER_SORTS)}")
    query = filtered_orders(filters)
    after = _decode(cursor, sort) if cursor else None
    if sort == "-id":
        query = query.order_by(Order.id.desc())
        if after:
            query = query.where(Order.id < after[1])
    else:
        query = query.order_by(Order.placed_at.desc(), Order.id.desc())
        if after:
            # A row-value comparison, so both databases walk the (placed_at, id) index.
            query = query.where(tuple_(Order.placed_at, Order.id) < after)
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        key = [last.id] if sort == "-id" else [last.placed_at.isoformat(), last.id]
        next_cursor = _encode(key)
    return rows, next_cursor


def count_orders(session: Session, filters: OrderFilters, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many orders match, counting at most ``cap``; ``(cap, True)`` when more do."""
    sub = filtered_orders(filters).with_only_columns(Order.id).limit(cap + 1).subquery()
    counted = session.scalar(select(func.count()).select_from(sub)) or 0
    return (cap, True) if counted > cap else (counted, False)


def visible_order(crm: Crm, session: Session, user: SignedIn, order_id: int) -> Order | None:
    """The order if it exists and ``user``'s record rule shows it, else ``None``."""
    query = select(Order).where(Order.id == order_id)
    condition = visible_condition(crm, user)
    if condition is not None:
        query = query.where(condition)
    return session.scalar(query)


__all__ = [
    "TRANSITIONS",
    "InvalidField",
    "LineInput",
    "RefTaken",
    "SkuTaken",
    "StaleVersion",
    "count_orders",
    "create_order",
    "create_product",
    "line_amount",
    "lines_of",
    "order_as_dict",
    "page_orders",
    "placed_payload",
    "product_as_dict",
    "set_status",
    "update_product",
    "visible_order",
]
