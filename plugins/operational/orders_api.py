"""REST endpoints for products and orders under ``/api/operational/``.

Read routes are ``async def`` and query synchronously (see ``core.web.deps``); routes that
write are plain ``def`` and run in the thread pool. Orders follow their customer's record rule:
an order the user may not see answers 404. Money is integer minor units (``*_minor``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core import records
from core.runtime import Crm
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission, write_session
from core.web.inputs import (
    BODY,
    CLEAN_TEXT,
    CLEAN_TEXT_OR_BLANK,
    MAX_ID,
    Amount,
    Currency,
    Id,
    Timestamp,
    Version,
    Whole,
)
from plugins.operational import orders
from plugins.operational.models import ORDER_STATUSES, Order, Product

router = APIRouter(tags=["orders"])

Status = Literal[ORDER_STATUSES]  # type: ignore[valid-type]
#: Money in minor units: a JSON integer (strings and floats are refused).
MinorUnits = Amount


class _ProductFields(BaseModel):
    model_config = BODY
    category: str | None = Field(None, max_length=100, pattern=CLEAN_TEXT_OR_BLANK)
    cost_minor: MinorUnits | None = None
    currency: Currency | None = Field(None, min_length=3, max_length=3)
    upgrade_to_id: Id | None = Field(None, ge=1)


class ProductIn(_ProductFields):
    """A new product; ``currency`` defaults to the setting ``default_currency``."""

    sku: str = Field(min_length=1, max_length=64, pattern=CLEAN_TEXT)
    name: str = Field(min_length=1, max_length=200, pattern=CLEAN_TEXT)
    price_minor: MinorUnits = 0
    active: bool = True


class ProductPatch(_ProductFields):
    """Changes to a product; ``version`` is the version the client read. A field left out
    keeps its value; ``sku``, ``name``, ``price_minor`` and ``active`` cannot be null."""

    version: Version = Field(ge=1)
    sku: str = Field(None, min_length=1, max_length=64, pattern=CLEAN_TEXT)
    name: str = Field(None, min_length=1, max_length=200, pattern=CLEAN_TEXT)
    price_minor: MinorUnits = None
    active: bool = None


class ProductOut(BaseModel):
    """A product."""

    id: int
    sku: str
    name: str
    category: str | None
    price_minor: int
    cost_minor: int | None
    currency: str
    active: bool
    upgrade_to_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


class ProductPage(BaseModel):
    """One page of products, by id."""

    items: list[ProductOut]
    next_cursor: int | None


class LineIn(BaseModel):
    """A line: a product, a quantity, and optionally the unit price (else the product's)."""

    model_config = BODY
    product_id: Id = Field(ge=1)
    quantity: Whole = Field(1, ge=1, le=orders.MAX_QUANTITY)
    unit_price_minor: MinorUnits | None = None
    discount_minor: MinorUnits = 0


class OrderIn(BaseModel):
    """A new order: lines, or only ``total_minor`` when the lines are unknown.

    A ``placed_at`` without a time zone is read in the setting ``timezone``; without
    ``ref`` one is generated.
    """

    model_config = BODY
    customer_id: Id = Field(ge=1)
    ref: str | None = Field(None, min_length=1, max_length=64, pattern=CLEAN_TEXT_OR_BLANK)
    placed_at: Timestamp | None = None
    currency: Currency | None = Field(None, min_length=3, max_length=3)
    channel: str | None = Field(None, max_length=30, pattern=CLEAN_TEXT_OR_BLANK)
    status: Status = "placed"
    lines: list[LineIn] = Field(default_factory=list, max_length=1000)
    total_minor: MinorUnits | None = None


class OrderPatch(BaseModel):
    """A status change; ``version`` is the version the client read."""

    model_config = BODY
    version: Version = Field(ge=1)
    status: Status


class LineOut(BaseModel):
    """A stored line."""

    id: int | None
    product_id: int | None
    sku: str | None
    quantity: int
    unit_price_minor: int
    discount_minor: int
    amount_minor: int


class OrderSummary(BaseModel):
    """An order without its lines (lists)."""

    id: int
    ref: str
    customer_id: int
    channel: str | None
    status: str
    placed_at: dt.datetime
    currency: str
    total_minor: int
    cost_minor: int | None
    owner_id: int | None
    created_at: dt.datetime
    version: int


class OrderOut(OrderSummary):
    """An order with its lines."""

    lines: list[LineOut]


class OrderPage(BaseModel):
    """One page of orders. ``total`` stops at 10,000 (``total_capped`` then true)."""

    items: list[OrderSummary]
    next_cursor: str | None
    total: int
    total_capped: bool


def _invalid(field: str | list[Any], message: str, where: str = "body") -> HTTPException:
    loc = [where, *field] if isinstance(field, list) else [where, field]
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, [{"loc": loc, "msg": message, "type": "value_error"}]
    )


def _invalid_field(exc: orders.InvalidField) -> HTTPException:
    if exc.line is None:
        return _invalid(exc.field, str(exc))
    return _invalid(["lines", exc.line, exc.field], str(exc))


def _conflict(message: str, **detail: Any) -> JSONResponse:
    return JSONResponse({"detail": message, **detail}, status_code=status.HTTP_409_CONFLICT)


def _stale(current: dict[str, Any], what: str) -> JSONResponse:
    return JSONResponse(
        {
            "detail": f"{what} {current['id']} was changed by someone else; "
            "review the current values and try again",
            "current": current,
        },
        status_code=status.HTTP_409_CONFLICT,
    )


def _product_out(product: Product) -> dict[str, Any]:
    return ProductOut(**orders.product_as_dict(product)).model_dump(mode="json")


def _order_out(session: Session, order: Order) -> dict[str, Any]:
    data = orders.order_as_dict(order, orders.lines_of(session, order.id))
    return OrderOut(**data).model_dump(mode="json")


def _product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no product {product_id}")
    return product


def _order(session: Session, crm: Crm, principal: Principal, order_id: int) -> Order:
    """The order, or 404 when it does not exist or the user's record rule hides it."""
    order = orders.visible_order(crm, session, principal.user, order_id)
    if order is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_id}")
    return order


# --- products --------------------------------------------------------------------------------


@router.get(
    "/products", response_model=ProductPage, openapi_extra=access("operational.product:read")
)
async def list_products(
    sku: str | None = Query(None, max_length=64),
    category: str | None = Query(None, max_length=100),
    active: bool | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: int | None = Query(
        None, ge=0, le=MAX_ID, description="the next_cursor of the previous page"
    ),
    _: Principal = Depends(require_permission("operational.product:read")),
    session: Session = Depends(read_session),
) -> ProductPage:
    """Products by id, one keyset page at a time, optionally filtered."""
    query = select(Product).order_by(Product.id).limit(limit + 1)
    if sku:
        query = query.where(Product.sku == sku.strip())
    if category:
        query = query.where(Product.category == category.strip())
    if active is not None:
        query = query.where(Product.active.is_(active))
    if cursor:
        query = query.where(Product.id > cursor)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return ProductPage(
        items=[ProductOut(**orders.product_as_dict(p)) for p in rows],
        next_cursor=rows[-1].id if more and rows else None,
    )


@router.post(
    "/products",
    response_model=ProductOut,
    status_code=201,
    responses={409: {"description": "the SKU belongs to another product"}},
    openapi_extra=access("operational.product:create"),
)
def create_product(
    body: ProductIn,
    _: Principal = Depends(require_permission("operational.product:create")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Create a product; the SKU is unique."""
    try:
        product = orders.create_product(session, crm, body.model_dump(exclude_unset=True))
    except orders.InvalidField as exc:
        raise _invalid_field(exc) from None
    except orders.SkuTaken as exc:
        return _conflict(str(exc), sku=exc.sku, product_id=exc.product_id)
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, "the SKU was taken meanwhile") from None
    return _product_out(product)


@router.get(
    "/products/{product_id}",
    response_model=ProductOut,
    openapi_extra=access("operational.product:read"),
)
async def read_product(
    product_id: Id,
    _: Principal = Depends(require_permission("operational.product:read")),
    session: Session = Depends(read_session),
) -> Any:
    """One product."""
    return _product_out(_product(session, product_id))


@router.patch(
    "/products/{product_id}",
    response_model=ProductOut,
    responses={409: {"description": "stale version (the body holds the current one) or SKU"}},
    openapi_extra=access("operational.product:update"),
)
def update_product(
    product_id: Id,
    body: ProductPatch,
    _: Principal = Depends(require_permission("operational.product:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Change a product; send the ``version`` you read. A stale version gets 409."""
    product = _product(session, product_id)
    data = body.model_dump(exclude={"version"}, exclude_unset=True)
    try:
        orders.update_product(session, crm, product, data, body.version)
    except orders.StaleVersion:
        return _stale(_product_out(product), "product")
    except orders.InvalidField as exc:
        raise _invalid_field(exc) from None
    except orders.SkuTaken as exc:
        return _conflict(str(exc), sku=exc.sku, product_id=exc.product_id)
    except StaleDataError:
        # The failed flush ended this transaction; read the winner's version afresh.
        with crm.db.session() as fresh:
            return _stale(_product_out(_product(fresh, product_id)), "product")
    return _product_out(product)


# --- orders ----------------------------------------------------------------------------------


def _utc(value: dt.datetime | None, crm: Crm) -> dt.datetime | None:
    return None if value is None else orders.aware(value, crm)


@router.get("/orders", response_model=OrderPage, openapi_extra=access("operational.order:read"))
async def list_orders(
    customer_id: Id | None = Query(None, ge=1),
    status_: Status | None = Query(None, alias="status"),
    since: Timestamp | None = Query(None, description="placed at or after (ISO 8601)"),
    until: Timestamp | None = Query(None, description="placed before (ISO 8601)"),
    sort: Literal["-placed_at", "-id"] = "-placed_at",
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=500),
    principal: Principal = Depends(require_permission("operational.order:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> OrderPage:
    """Orders the user may see, newest first, one keyset page at a time."""
    filters = orders.OrderFilters(
        customer_id=customer_id,
        status=status_,
        since=_utc(since, crm),
        until=_utc(until, crm),
        visible=orders.visible_condition(crm, principal.user),
    )
    try:
        rows, next_cursor = orders.page_orders(session, filters, limit, cursor, sort)
    except orders.CursorError as exc:
        raise _invalid("cursor", str(exc), "query") from None
    total, capped = orders.count_orders(session, filters)
    return OrderPage(
        items=[OrderSummary(**orders.order_as_dict(o)) for o in rows],
        next_cursor=next_cursor,
        total=total,
        total_capped=capped,
    )


@router.post(
    "/orders",
    response_model=OrderOut,
    status_code=201,
    responses={409: {"description": "the reference belongs to another order"}},
    openapi_extra=access("operational.order:create"),
)
def create_order(
    body: OrderIn,
    principal: Principal = Depends(require_permission("operational.order:create")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Create an order with its lines for a customer the user may see.

    It belongs to the customer's owner; ``order_placed`` fires after the commit.
    """
    if not records.can_see_customer(crm, session, principal.user, body.customer_id):
        raise _invalid("customer_id", f"no customer {body.customer_id}")
    try:
        order = orders.create_order(
            session,
            crm,
            customer_id=body.customer_id,
            lines=[orders.LineInput(**line.model_dump()) for line in body.lines],
            total_minor=body.total_minor,
            ref=body.ref,
            placed_at=body.placed_at,
            currency_code=body.currency,
            channel=body.channel,
            order_status=body.status,
            actor_id=principal.user.id,
        )
    except orders.InvalidField as exc:
        raise _invalid_field(exc) from None
    except orders.RefTaken as exc:
        return _conflict(str(exc), ref=exc.ref, order_id=exc.order_id)
    except IntegrityError:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the order reference was taken meanwhile"
        ) from None
    return _order_out(session, order)


@router.get(
    "/orders/{order_id}",
    response_model=OrderOut,
    openapi_extra=access("operational.order:read", scoped=True),
)
async def read_order(
    order_id: Id,
    principal: Principal = Depends(require_permission("operational.order:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """One order with its lines."""
    return _order_out(session, _order(session, crm, principal, order_id))


@router.patch(
    "/orders/{order_id}",
    response_model=OrderOut,
    responses={409: {"description": "stale version; the body holds the current one"}},
    openapi_extra=access("operational.order:update", scoped=True),
)
def update_order(
    order_id: Id,
    body: OrderPatch,
    principal: Principal = Depends(require_permission("operational.order:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Move an order to another status; send the ``version`` you read."""
    order = _order(session, crm, principal, order_id)
    try:
        orders.set_status(session, crm, order, body.status, body.version)
    except orders.StaleVersion:
        return _stale(_order_out(session, order), "order")
    except orders.InvalidField as exc:
        raise _invalid_field(exc) from None
    except StaleDataError:
        # The failed flush ended this transaction; read the winner's version afresh.
        with crm.db.session() as fresh:
            current = _order(fresh, crm, principal, order_id)
            return _stale(_order_out(fresh, current), "order")
    return _order_out(session, order)
