"""REST endpoints of the partner network under ``/api/collaborative/``: partners, their contacts
and links, and customers shared with partner contacts.

Partners themselves are visible to whoever holds ``collaborative.partner:read``; their links
show only on records the user may see, and a record the user may not see answers 404.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from core.customers.exporter import neutralise
from core.errors import Conflict, Invalid, NotFoundError
from core.runtime import Crm
from core.web.access import access
from core.web.deps import Principal, get_crm, read_session, require_permission, write_session
from core.web.inputs import BODY, MAX_ID, NOT_BLANK, Id, Version
from core.web.problems import conflict, guarded, invalid, stale
from plugins.collaborative import partners
from plugins.collaborative.models import (
    PARTNER_KINDS,
    PARTNER_RELATIONS,
    Partner,
    PartnerContact,
    PartnerLink,
    Share,
)

T = TypeVar("T")
router = APIRouter(tags=["collaborative: partners"])

PartnerKind = Literal[*PARTNER_KINDS]

READ = "collaborative.partner:read"
CREATE = "collaborative.partner:create"
UPDATE = "collaborative.partner:update"
EXPORT = "collaborative.partner:export"
SHARE = "collaborative.share:manage"
STALE = {409: {"description": "stale version; the body holds the current partner"}}
EXPORT_COLUMNS = ("id", "name", "kind", "email", "phone", "website", "active")


class PartnerIn(BaseModel):
    """A new partner; ``kind`` is one of supplier, distributor, reseller, referral,
    service_provider. E-mail and phone are normalised (the phone read in the CRM's region)."""

    model_config = BODY
    name: str = Field(max_length=200, pattern=NOT_BLANK)
    kind: PartnerKind
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=40)
    website: str | None = Field(None, max_length=300)
    notes: str = Field("", max_length=20_000)
    active: bool = True


class PartnerPatch(BaseModel):
    """Changes to a partner; ``version`` is the version the client read. A field left out keeps
    its value; ``name`` and ``kind`` cannot be null."""

    model_config = BODY
    version: Version = Field(ge=1)
    name: str = Field(None, max_length=200, pattern=NOT_BLANK)
    kind: PartnerKind = None
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=40)
    website: str | None = Field(None, max_length=300)
    notes: str | None = Field(None, max_length=20_000)
    active: bool | None = None


class PartnerOut(BaseModel):
    """A partner."""

    id: int
    name: str
    kind: str
    email: str | None
    phone: str | None
    website: str | None
    notes: str
    active: bool
    created_at: dt.datetime
    version: int


class PartnerPage(BaseModel):
    """Partners by name; ``total`` counts every match."""

    items: list[PartnerOut]
    total: int


class ContactIn(BaseModel):
    """A person at a partner."""

    model_config = BODY
    name: str = Field(max_length=200, pattern=NOT_BLANK)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=40)
    position: str = Field("", max_length=100)


class ContactPatch(BaseModel):
    """Changes to a contact (an invited contact keeps their e-mail); ``name`` cannot be null."""

    model_config = BODY
    name: str = Field(None, max_length=200, pattern=NOT_BLANK)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=40)
    position: str | None = Field(None, max_length=100)


class ContactOut(BaseModel):
    """A person at a partner; ``user_id`` is their sign-in once invited."""

    id: int
    partner_id: int
    name: str
    email: str | None
    phone: str | None
    position: str
    user_id: int | None


class InvitationOut(BaseModel):
    """The contact's new sign-in: the password is shown this once, never stored in clear."""

    user_id: int
    email: str
    password: str


class LinkIn(BaseModel):
    """The partner's part in a customer or (with the operational module) an opportunity."""

    model_config = BODY
    record_type: str = Field("customer", max_length=60)
    record_id: Id = Field(ge=1)
    relation: Literal[*PARTNER_RELATIONS]
    note: str = Field("", max_length=2000)


class LinkOut(BaseModel):
    """A link between a partner and a record, with both their names."""

    id: int
    partner_id: int
    partner_name: str
    record_type: str
    record_id: int
    record_title: str | None
    customer_id: int | None
    relation: str
    note: str
    created_at: dt.datetime


class ShareIn(BaseModel):
    """Share a customer with a partner contact's sign-in."""

    model_config = BODY
    customer_id: Id = Field(ge=1)
    user_id: Id = Field(ge=1)
    note: str = Field("", max_length=2000)


class ShareOut(BaseModel):
    """A customer shared with a partner user."""

    customer_id: int
    user_id: int
    email: str
    name: str
    granted_by: int | None
    granted_at: dt.datetime
    note: str


def _not_found(exc: NotFoundError) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


def _run(change: Callable[[], T]) -> T:
    """Run a change: ``Invalid`` is 422 naming the field, ``Conflict`` 409, not found 404."""
    try:
        return change()
    except Invalid as exc:
        raise invalid(exc.errors) from None
    except Conflict as exc:
        raise conflict(str(exc)) from None
    except NotFoundError as exc:
        raise _not_found(exc) from None


def _partner(session: Session, partner_id: int) -> Partner:
    try:
        return partners.get_partner(session, partner_id)
    except NotFoundError as exc:
        raise _not_found(exc) from None


def _contact(session: Session, partner_id: int, contact_id: int) -> PartnerContact:
    try:
        return partners.get_contact(session, partner_id, contact_id)
    except NotFoundError as exc:
        raise _not_found(exc) from None


def _out(partner: Partner) -> PartnerOut:
    return PartnerOut.model_validate(partner, from_attributes=True)


def _contact_out(contact: PartnerContact) -> ContactOut:
    return ContactOut.model_validate(contact, from_attributes=True)


def _links_out(
    crm: Crm, session: Session, rows: list[tuple[PartnerLink, Partner]]
) -> list[LinkOut]:
    titles = partners.titles(crm, session, [link for link, _ in rows])
    return [
        LinkOut(
            id=link.id,
            partner_id=link.partner_id,
            partner_name=partner.name,
            record_type=link.record_type,
            record_id=link.record_id,
            record_title=titles.get((link.record_type, link.record_id)),
            customer_id=link.customer_id,
            relation=link.relation,
            note=link.note,
            created_at=link.created_at,
        )
        for link, partner in rows
    ]


def _region(crm: Crm) -> str:
    return crm.settings.default_region


def _matching(q: str | None, kind: str | None) -> list[Any]:
    conditions = []
    if q and q.strip():
        conditions.append(partners.search_condition(q))
    if kind:
        conditions.append(Partner.kind == kind)
    return conditions


# --- partners ----------------------------------------------------------------------------------


@router.get("/partners", response_model=PartnerPage, openapi_extra=access(READ))
async def list_partners(
    q: str | None = Query(None, max_length=200, description="part of the name"),
    kind: str | None = Query(None, max_length=40),
    active: bool | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=100_000),
    _: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
) -> PartnerPage:
    """Partners matching the search, by name, with the number of matches."""
    conditions = _matching(q, kind)
    if active is not None:
        conditions.append(Partner.active.is_(active))
    rows = session.scalars(
        select(Partner)
        .where(*conditions)
        .order_by(Partner.name, Partner.id)
        .offset(offset)
        .limit(limit)
    )
    total = session.scalar(select(func.count()).select_from(Partner).where(*conditions)) or 0
    return PartnerPage(items=[_out(p) for p in rows], total=total)


@router.get(
    "/partners/export.csv",
    response_class=StreamingResponse,
    responses={200: {"description": "The partners as CSV", "content": {"text/csv": {}}}},
    openapi_extra=access(EXPORT),
)
def export_partners(
    request: Request,
    q: str | None = Query(None, max_length=200),
    kind: str | None = Query(None, max_length=40),
    _: Principal = Depends(require_permission(EXPORT)),
    crm: Crm = Depends(get_crm),
) -> StreamingResponse:
    """Matching partners as CSV (spreadsheet formulas neutralised); the export is audited."""
    conditions = _matching(q, kind)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        with crm.db.session() as session:
            query = select(Partner).where(*conditions).order_by(Partner.name, Partner.id)
            for partner in session.scalars(query):
                cells = [getattr(partner, name) for name in EXPORT_COLUMNS]
                writer.writerow([neutralise("" if c is None else str(c)) for c in cells])
        yield buffer.getvalue()

    with crm.db.write() as session:
        session.info[audit.REQUEST_KEY] = request
        audit.record(
            session,
            "export",
            partners.RECORD_TYPE,
            None,
            detail="api export",
            after={"q": q, "kind": kind},
        )
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="partners.csv"'},
    )


@router.post("/partners", response_model=PartnerOut, status_code=201, openapi_extra=access(CREATE))
def create_partner(
    body: PartnerIn,
    _: Principal = Depends(require_permission(CREATE)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Add a partner. 422 names the bad field (name, kind, email, phone, website)."""
    return _run(lambda: _out(partners.create_partner(session, body.model_dump(), _region(crm))))


@router.get("/partners/{partner_id:int}", response_model=PartnerOut, openapi_extra=access(READ))
async def read_partner(
    partner_id: Id,
    _: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
) -> PartnerOut:
    """One partner."""
    return _out(_partner(session, partner_id))


def _reloaded(crm: Crm, partner_id: int) -> Any:
    with crm.db.session() as fresh:
        return stale("partner", partner_id, _out(_partner(fresh, partner_id)))


@router.patch(
    "/partners/{partner_id:int}",
    response_model=PartnerOut,
    responses=STALE,
    openapi_extra=access(UPDATE),
)
def update_partner(
    partner_id: Id,
    body: PartnerPatch,
    _: Principal = Depends(require_permission(UPDATE)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Change a partner; send the ``version`` you read. A stale version gets 409."""
    partner = _partner(session, partner_id)
    values = body.model_dump(exclude={"version"}, exclude_unset=True)

    def change() -> PartnerOut:
        partners.update_partner(session, partner, values, body.version, _region(crm))
        return _out(partner)

    return _run(lambda: guarded(change, lambda: _reloaded(crm, partner_id)))


@router.delete("/partners/{partner_id:int}", status_code=204, openapi_extra=access(UPDATE))
def delete_partner(
    partner_id: Id,
    _: Principal = Depends(require_permission(UPDATE)),
    session: Session = Depends(write_session),
) -> Response:
    """Delete a partner, its contacts and links; invited contacts lose their sign-in and
    shares."""
    partners.delete_partner(session, _partner(session, partner_id))
    return Response(status_code=204)


# --- contacts ----------------------------------------------------------------------------------


@router.get(
    "/partners/{partner_id}/contacts", response_model=list[ContactOut], openapi_extra=access(READ)
)
async def list_contacts(
    partner_id: Id,
    _: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
) -> list[ContactOut]:
    """The partner's contacts, by name."""
    _partner(session, partner_id)
    return [_contact_out(c) for c in partners.contacts_of(session, partner_id)]


@router.post(
    "/partners/{partner_id}/contacts",
    response_model=ContactOut,
    status_code=201,
    openapi_extra=access(UPDATE),
)
def add_contact(
    partner_id: Id,
    body: ContactIn,
    _: Principal = Depends(require_permission(UPDATE)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Add a person at the partner."""
    partner = _partner(session, partner_id)
    return _run(
        lambda: _contact_out(
            partners.add_contact(session, partner, body.model_dump(), _region(crm))
        )
    )


@router.patch(
    "/partners/{partner_id}/contacts/{contact_id}",
    response_model=ContactOut,
    openapi_extra=access(UPDATE),
)
def update_contact(
    partner_id: Id,
    contact_id: Id,
    body: ContactPatch,
    _: Principal = Depends(require_permission(UPDATE)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Change a contact."""
    contact = _contact(session, partner_id, contact_id)
    values = body.model_dump(exclude_unset=True)
    return _run(
        lambda: _contact_out(partners.update_contact(session, contact, values, _region(crm)))
    )


@router.delete(
    "/partners/{partner_id}/contacts/{contact_id}", status_code=204, openapi_extra=access(UPDATE)
)
def remove_contact(
    partner_id: Id,
    contact_id: Id,
    _: Principal = Depends(require_permission(UPDATE)),
    session: Session = Depends(write_session),
) -> Response:
    """Remove a contact; an invited contact's sign-in is deactivated and their shares end."""
    partners.remove_contact(session, _contact(session, partner_id, contact_id))
    return Response(status_code=204)


@router.post(
    "/partners/{partner_id}/contacts/{contact_id}/invite",
    response_model=InvitationOut,
    status_code=201,
    openapi_extra=access(SHARE),
)
def invite_contact(
    partner_id: Id,
    contact_id: Id,
    response: Response,
    _: Principal = Depends(require_permission(SHARE)),
    session: Session = Depends(write_session),
) -> Any:
    """Give the contact a sign-in (role ``partner``: sees only customers shared with them).

    The answer holds the generated password once (only its hash is stored).
    """
    contact = _contact(session, partner_id, contact_id)
    response.headers["Cache-Control"] = "no-store"
    invitation = _run(lambda: partners.invite(session, contact))
    return InvitationOut(
        user_id=invitation.user_id, email=invitation.email, password=invitation.password
    )


# --- links -------------------------------------------------------------------------------------


@router.get(
    "/partners/{partner_id}/links", response_model=list[LinkOut], openapi_extra=access(READ)
)
async def partner_links(
    partner_id: Id,
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> list[LinkOut]:
    """The partner's links on customers and opportunities the user may see."""
    partner = _partner(session, partner_id)
    rows = partners.links_of_partner(crm, session, principal.user, partner_id)
    return _links_out(crm, session, [(link, partner) for link in rows])


@router.post(
    "/partners/{partner_id}/links",
    response_model=LinkOut,
    status_code=201,
    responses={409: {"description": "the partner has this link already"}},
    openapi_extra=access(UPDATE, scoped=True),
)
def add_link(
    partner_id: Id,
    body: LinkIn,
    principal: Principal = Depends(require_permission(UPDATE)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Link the partner to a customer or an opportunity the user may see (404 otherwise).

    The same partner, record and relation twice is 409.
    """
    partner = _partner(session, partner_id)

    def change() -> LinkOut:
        row = partners.link(
            crm,
            session,
            principal.user,
            partner_id,
            body.record_type,
            body.record_id,
            body.relation,
            body.note,
        )
        session.flush()
        return _links_out(crm, session, [(row, partner)])[0]

    return _run(change)


@router.delete(
    "/partners/{partner_id}/links/{link_id}",
    status_code=204,
    openapi_extra=access(UPDATE, scoped=True),
)
def remove_link(
    partner_id: Id,
    link_id: Id,
    principal: Principal = Depends(require_permission(UPDATE)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Response:
    """Remove a link on a record the user may see."""
    row = _run(lambda: partners.get_link(crm, session, principal.user, partner_id, link_id))
    partners.unlink(session, row)
    return Response(status_code=204)


@router.get("/links", response_model=list[LinkOut], openapi_extra=access(READ, scoped=True))
async def record_links(
    record_type: str = Query(max_length=60),
    record_id: Id = Query(ge=1, le=MAX_ID),
    principal: Principal = Depends(require_permission(READ)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """The partners of a record the user may see (404 otherwise)."""
    rows = _run(
        lambda: partners.links_of_record(crm, session, principal.user, record_type, record_id)
    )
    return _links_out(crm, session, rows)


# --- shares ------------------------------------------------------------------------------------


def _share_out(share: Share, user: Any) -> ShareOut:
    return ShareOut(
        customer_id=share.customer_id,
        user_id=share.user_id,
        email=user.email,
        name=user.name,
        granted_by=share.granted_by,
        granted_at=share.granted_at,
        note=share.note,
    )


@router.get("/shares", response_model=list[ShareOut], openapi_extra=access(SHARE, scoped=True))
async def list_shares(
    customer_id: Id = Query(ge=1, le=MAX_ID),
    principal: Principal = Depends(require_permission(SHARE)),
    session: Session = Depends(read_session),
    crm: Crm = Depends(get_crm),
) -> list[ShareOut]:
    """Who a customer is shared with."""
    rows = _run(lambda: partners.shares_of(crm, session, principal.user, customer_id))
    return [_share_out(share, user) for share, user in rows]


@router.post(
    "/shares", response_model=ShareOut, status_code=201, openapi_extra=access(SHARE, scoped=True)
)
def add_share(
    body: ShareIn,
    principal: Principal = Depends(require_permission(SHARE)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Any:
    """Share a customer with a partner contact's sign-in: they see that customer (and only the
    customers shared with them). 422 when ``user_id`` is not an active partner user."""

    def change() -> ShareOut:
        share = partners.share_customer(
            crm, session, principal.user, body.customer_id, body.user_id, body.note
        )
        session.flush()
        rows = partners.shares_of(crm, session, principal.user, body.customer_id)
        return next(_share_out(s, u) for s, u in rows if s.user_id == share.user_id)

    return _run(change)


@router.delete("/shares", status_code=204, openapi_extra=access(SHARE, scoped=True))
def remove_share(
    customer_id: Id = Query(ge=1, le=MAX_ID),
    user_id: Id = Query(ge=1, le=MAX_ID),
    principal: Principal = Depends(require_permission(SHARE)),
    session: Session = Depends(write_session),
    crm: Crm = Depends(get_crm),
) -> Response:
    """Stop sharing a customer with a partner user."""
    _run(lambda: partners.unshare(crm, session, principal.user, customer_id, user_id))
    return Response(status_code=204)
