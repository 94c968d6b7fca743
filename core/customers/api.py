"""REST API for customers: list, search, create, read, update with optimistic locking,
archive, delete, identities, lookup, duplicates and merge.

Read routes are ``async def`` and query synchronously (see ``core.web.deps``); routes that
write are plain ``def`` and run in the thread pool, where waiting for a lock harms no one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic_core import to_json
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core import records
from core.customers import identify, listing, service
from core.customers.fields import FieldError
from core.customers.models import Customer
from core.normalize import CHANNELS, IdentityError
from core.runtime import Crm
from core.web.access import access
from core.web.deps import (
    Principal,
    get_crm,
    read_connection,
    read_session,
    require_permission,
    write_session,
)
from core.web.inputs import BODY, Id, Version, trimmed

router = APIRouter(prefix="/api/customers", tags=["customers"])

Channel = Literal["email", "phone", "zalo", "facebook", "web", "external"]
Kind = Literal["person", "company"]


class IdentityIn(BaseModel):
    """A way to recognise the customer."""

    model_config = BODY
    channel: Channel
    value: str = Field(min_length=1, max_length=254)


class IdentityOut(BaseModel):
    """A stored, normalised identity."""

    id: int
    channel: str
    value: str


# Whitespace in names and addresses is folded into single spaces; other control characters
# are refused (core.customers.fields.text).
_TEXT = "^[^\\x00-\\x08\\x0e-\\x1b\\x7f]*$"


class _Fields(BaseModel):
    model_config = BODY
    display_name: str | None = Field(None, max_length=200, pattern=_TEXT)
    given_name: str | None = Field(None, max_length=100, pattern=_TEXT)
    family_name: str | None = Field(None, max_length=100, pattern=_TEXT)
    company_id: Id | None = Field(None, ge=1)
    address: str | None = Field(None, max_length=2000, pattern=_TEXT)
    country: str | None = Field(None, max_length=2, pattern=trimmed("[A-Za-z]{2}"))
    language: str | None = Field(
        None, max_length=10, pattern=trimmed("[a-z]{2,3}(-[A-Za-z]{2,4})?")
    )
    owner_id: Id | None = Field(None, ge=1)
    source_channel: str | None = Field(None, max_length=30, pattern=_TEXT)
    external_ref: str | None = Field(None, max_length=100, pattern=_TEXT)


class CustomerIn(_Fields):
    """A new customer. Without ``owner_id`` the creator owns it."""

    kind: Kind = "person"
    tags: list[str] = Field(default_factory=list, max_length=20)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=50)


class CustomerPatch(_Fields):
    """Changes to a customer; ``version`` is the version the client read."""

    version: Version = Field(ge=1)
    kind: Kind | None = None
    tags: list[str] | None = Field(None, max_length=20)


class CustomerOut(BaseModel):
    """A customer with identities and tags."""

    id: int
    kind: str
    display_name: str
    given_name: str | None
    family_name: str | None
    company_id: int | None
    address: str | None
    country: str | None
    language: str | None
    owner_id: int | None
    source_channel: str | None
    external_ref: str | None
    archived: bool
    tags: list[str]
    identities: list[IdentityOut]
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


class CustomerPage(BaseModel):
    """One page of customers. ``total`` stops at 10,000 (``total_capped`` then true)."""

    items: list[CustomerOut]
    next_cursor: str | None
    total: int
    total_capped: bool


class DuplicateOut(BaseModel):
    """A possible duplicate and the reasons to think so."""

    customer: CustomerOut
    reasons: list[str]
    score: float


class MergeIn(BaseModel):
    """Merge ``other_id`` into the customer of the URL."""

    model_config = BODY
    other_id: Id = Field(ge=1)
    survivor_version: Version | None = Field(None, ge=1)
    other_version: Version | None = Field(None, ge=1)
    choose: dict[str, Literal["survivor", "other"]] = Field(default_factory=dict)


class MergeOut(BaseModel):
    """The survivor after the merge, and what was reconciled."""

    survivor: CustomerOut
    merged_id: int
    conflicts: dict[str, dict[str, Any]]
    moved: dict[str, int]


def _out(customer: Customer) -> CustomerOut:
    return CustomerOut(**service.as_dict(customer))


def _invalid(field: str, message: str, where: str = "body") -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": [where, field], "msg": message, "type": "value_error"}],
    )


def _conflict(exc: service.IdentityConflict) -> JSONResponse:
    return JSONResponse(
        {
            "detail": str(exc),
            "channel": exc.channel,
            "value": exc.value,
            "customer_id": exc.customer_id,
        },
        status_code=status.HTTP_409_CONFLICT,
    )


def _stale(customer: Customer) -> JSONResponse:
    return JSONResponse(
        {
            "detail": f"customer {customer.id} was changed by someone else; "
            "review the current values and try again",
            "current": _out(customer).model_dump(mode="json"),
        },
        status_code=status.HTTP_409_CONFLICT,
    )


def _get(session: Session, customer_id: int, principal: Principal, crm: Crm) -> Customer:
    """The customer, or 404 when it does not exist or the user's record rule hides it."""
    customer = session.get(Customer, customer_id)
    if customer is None or not records.can_see_customer(crm, session, principal.user, customer_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id}")
    return customer


def _check_owner_change(principal: Principal, owner_id: int | None) -> None:
    if (
        owner_id is not None
        and owner_id != principal.user.id
        and not principal.can("customer:assign")
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "assigning customers to others requires customer:assign"
        )


@router.get("", response_model=CustomerPage, openapi_extra=access("customer:read"))
async def list_customers(
    q: str | None = Query(None, max_length=200, description="accent-insensitive name prefix"),
    tag: str | None = Query(None, max_length=50),
    owner_id: Id | None = Query(None, ge=1),
    kind: Kind | None = None,
    country: str | None = Query(None, min_length=2, max_length=2),
    company_id: Id | None = Query(None, ge=1),
    archived: Literal["false", "true", "any"] = "false",
    sort: Literal["-id", "id", "name"] | None = Query(
        None, description="default: name when searching with q (fast on big tables), else -id"
    ),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=500),
    principal: Principal = Depends(require_permission("customer:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> CustomerPage:
    """Customers matching the filters, one keyset page at a time."""
    filters = listing.Filters(
        q=q,
        tag=tag,
        owner_id=owner_id,
        kind=kind,
        country=country,
        company_id=company_id,
        archived=listing.archived_filter(archived),
        visible=records.customer_condition(crm, principal.user),
    )
    sort = sort or ("name" if q and q.strip() else "-id")
    try:
        rows, next_cursor = listing.page(session, filters, limit, cursor, sort)
    except listing.CursorError as exc:
        raise _invalid("cursor", str(exc), "query") from None
    total, capped = listing.count_capped(session, filters, listing.COUNT_CAP)
    return CustomerPage(
        items=[_out(c) for c in rows], next_cursor=next_cursor, total=total, total_capped=capped
    )


@router.post(
    "",
    response_model=CustomerOut,
    status_code=201,
    responses={409: {"description": "an identity belongs to another customer"}},
    openapi_extra=access("customer:create"),
)
def create_customer(
    body: CustomerIn,
    principal: Principal = Depends(require_permission("customer:create")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Create a customer with its identities and tags."""
    _check_owner_change(principal, body.owner_id)
    data = body.model_dump(exclude={"tags", "identities"}, exclude_unset=True)
    data.setdefault("owner_id", principal.user.id)
    data.setdefault("kind", body.kind)
    try:
        customer = service.create(
            session, crm, data, [(i.channel, i.value) for i in body.identities], body.tags
        )
    except (FieldError, IdentityError) as exc:
        raise _invalid(exc.field, str(exc)) from None
    except service.IdentityConflict as exc:
        return _conflict(exc)
    except IntegrityError:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "an identity or external ref was taken meanwhile"
        ) from None
    return _out(customer)


@router.get(
    "/lookup",
    response_model=CustomerOut,
    responses={404: {"description": "no match"}},
    openapi_extra=access("customer:read", scoped=True),
)
async def lookup_customer(
    email: str | None = Query(None, max_length=254),
    phone: str | None = Query(None, max_length=50),
    zalo: str | None = Query(None, max_length=100),
    facebook: str | None = Query(None, max_length=254),
    web: str | None = Query(None, max_length=200),
    external: str | None = Query(None, max_length=100),
    external_ref: str | None = Query(None, max_length=100),
    principal: Principal = Depends(require_permission("customer:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> CustomerOut:
    """The customer recognised by exactly one identity, given as it was written."""
    given = {
        k: v
        for k, v in {
            "email": email,
            "phone": phone,
            "zalo": zalo,
            "facebook": facebook,
            "web": web,
            "external": external,
            "external_ref": external_ref,
        }.items()
        if v
    }
    if len(given) != 1:
        raise _invalid(
            "identity", f"give exactly one of {', '.join((*CHANNELS, 'external_ref'))}", "query"
        )
    ((channel, value),) = given.items()
    try:
        customer = identify.lookup(session, channel, value, crm.settings.default_region)
    except IdentityError as exc:
        raise _invalid(channel, str(exc), "query") from None
    if customer is None or not records.can_see_customer(crm, session, principal.user, customer.id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer with {channel} {value}")
    return _out(customer)


@router.get(
    "/{customer_id:int}",
    response_model=CustomerOut,
    openapi_extra=access("customer:read", scoped=True),
)
async def read_customer(
    customer_id: Id,
    principal: Principal = Depends(require_permission("customer:read")),
    conn: Connection = Depends(read_connection),
    crm: Crm = Depends(get_crm),
) -> Response:
    """One customer."""
    data = service.read(conn, customer_id)
    if data is None or (
        principal.user.scope != "all"
        and not records.can_see_customer(crm, conn, principal.user, customer_id)
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id}")
    # Already in CustomerOut's shape: serialise once instead of validating it again.
    return Response(to_json(data), media_type="application/json")


@router.patch(
    "/{customer_id:int}",
    response_model=CustomerOut,
    responses={409: {"description": "stale version; the body holds the current one"}},
    openapi_extra=access("customer:update", scoped=True),
)
def update_customer(
    customer_id: Id,
    body: CustomerPatch,
    principal: Principal = Depends(require_permission("customer:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Change a customer; send the ``version`` you read. A stale version gets 409."""
    customer = _get(session, customer_id, principal, crm)
    data = body.model_dump(exclude={"version", "tags"}, exclude_unset=True)
    if "owner_id" in data and data["owner_id"] != customer.owner_id:
        _check_owner_change(principal, data["owner_id"] or -1)
    try:
        service.update(session, crm, customer, data, body.version, body.tags)
    except service.StaleVersion as exc:
        return _stale(exc.customer)
    except FieldError as exc:
        raise _invalid(exc.field, str(exc)) from None
    except service.IdentityConflict as exc:
        return _conflict(exc)
    except StaleDataError:
        # The failed flush ended this transaction; read the winner's version afresh.
        with crm.db.session() as fresh:
            return _stale(_get(fresh, customer_id, principal, crm))
    return _out(customer)


def _set_archived(
    session: Session, crm: Crm, principal: Principal, customer_id: int, archived: bool
) -> CustomerOut:
    customer = _get(session, customer_id, principal, crm)
    service.set_archived(session, crm, customer, archived)
    return _out(customer)


@router.post(
    "/{customer_id}/archive",
    response_model=CustomerOut,
    openapi_extra=access("customer:archive", scoped=True),
)
def archive_customer(
    customer_id: Id,
    principal: Principal = Depends(require_permission("customer:archive")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> CustomerOut:
    """Archive a customer: hidden from lists by default, kept with all its history."""
    return _set_archived(session, crm, principal, customer_id, True)


@router.post(
    "/{customer_id}/restore",
    response_model=CustomerOut,
    openapi_extra=access("customer:archive", scoped=True),
)
def restore_customer(
    customer_id: Id,
    principal: Principal = Depends(require_permission("customer:archive")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> CustomerOut:
    """Bring an archived customer back."""
    return _set_archived(session, crm, principal, customer_id, False)


@router.delete(
    "/{customer_id:int}", status_code=204, openapi_extra=access("customer:delete", scoped=True)
)
def delete_customer(
    customer_id: Id,
    principal: Principal = Depends(require_permission("customer:delete")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Response:
    """Delete a customer for good (administrators); the audit log keeps its last state."""
    service.delete(session, crm, _get(session, customer_id, principal, crm))
    return Response(status_code=204)


@router.post(
    "/{customer_id}/identities",
    response_model=IdentityOut,
    status_code=201,
    responses={409: {"description": "the identity belongs to another customer"}},
    openapi_extra=access("customer:update", scoped=True),
)
def add_identity(
    customer_id: Id,
    body: IdentityIn,
    principal: Principal = Depends(require_permission("customer:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Add an identity; 409 when it belongs to another customer."""
    customer = _get(session, customer_id, principal, crm)
    try:
        identity = service.add_identity(session, crm, customer, body.channel, body.value)
    except IdentityError as exc:
        raise _invalid("value", str(exc)) from None
    except service.IdentityConflict as exc:
        return _conflict(exc)
    return IdentityOut(id=identity.id, channel=identity.channel, value=identity.value)


@router.delete(
    "/{customer_id}/identities/{identity_id}",
    status_code=204,
    openapi_extra=access("customer:update", scoped=True),
)
def remove_identity(
    customer_id: Id,
    identity_id: Id,
    principal: Principal = Depends(require_permission("customer:update")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Response:
    """Remove one of the customer's identities."""
    try:
        customer = _get(session, customer_id, principal, crm)
        service.remove_identity(session, crm, customer, identity_id)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return Response(status_code=204)


@router.get(
    "/{customer_id}/duplicates",
    response_model=list[DuplicateOut],
    openapi_extra=access("customer:read", scoped=True),
)
async def customer_duplicates(
    customer_id: Id,
    principal: Principal = Depends(require_permission("customer:read")),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> list[DuplicateOut]:
    """Customers that may be the same person or company, with the reasons.

    Only candidates the user may see are listed.
    """
    customer = _get(session, customer_id, principal, crm)
    return [
        DuplicateOut(customer=_out(c.customer), reasons=c.reasons, score=round(c.score, 3))
        for c in identify.duplicates(session, customer)
        if records.can_see_customer(crm, session, principal.user, c.customer.id)
    ]


@router.post(
    "/{customer_id}/merge",
    response_model=MergeOut,
    responses={409: {"description": "a stale version; the body holds the current customer"}},
    openapi_extra=access("customer:merge", scoped=True),
)
def merge_customers(
    customer_id: Id,
    body: MergeIn,
    principal: Principal = Depends(require_permission("customer:merge")),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Merge ``other_id`` into this customer in one transaction; conflicts are returned."""
    survivor = _get(session, customer_id, principal, crm)
    other = _get(session, body.other_id, principal, crm)
    versions = None
    if body.survivor_version is not None or body.other_version is not None:
        versions = (body.survivor_version or survivor.version, body.other_version or other.version)
    try:
        result = identify.merge(session, crm, survivor, other, body.choose, versions)
    except service.StaleVersion as exc:
        return _stale(exc.customer)
    except ValueError as exc:
        raise _invalid("choose" if "choose" in str(exc) else "other_id", str(exc)) from None
    return MergeOut(
        survivor=_out(result.survivor),
        merged_id=result.merged_id,
        conflicts=result.conflicts,
        moved=result.moved,
    )
