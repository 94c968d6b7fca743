"""The partner network: partners, their contacts, their part in customers and opportunities,
and customers shared with partner contacts.

A partner contact may be invited: they get a core user with the ``partner`` role (scope
``shared``), who sees only the customers shared with them (the record rule is in ``rules.py``).
Sharing is for partner users only: a customer is shared with an active user holding the
``partner`` role; staff see customers through their own roles and teams.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from core import normalize, records
from core.errors import Conflict, Invalid, NotFoundError, StaleVersion
from core.i18n import N_
from core.models import User, UserRole
from core.records import RecordType
from plugins.collaborative import records as collab_records
from plugins.collaborative.models import (
    PARTNER_KINDS,
    PARTNER_RELATIONS,
    Partner,
    PartnerContact,
    PartnerLink,
    Share,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.auth import SignedIn
    from core.runtime import Crm

RECORD_TYPE = "collaborative.partner"
#: Record types a partner can be linked to (the opportunity only when operational is enabled).
LINKABLE = ("customer", "operational.opportunity")
PARTNER_ROLE = "partner"
KIND_LABELS = {
    "supplier": N_("Supplier"),
    "distributor": N_("Distributor"),
    "reseller": N_("Reseller"),
    "referral": N_("Referral source"),
    "service_provider": N_("Service provider"),
}
RELATION_LABELS = {
    "referred_by": N_("Referred by"),
    "served_by": N_("Served by"),
    "supplied_by": N_("Supplied by"),
    "sold_by": N_("Sold by"),
    "involved": N_("Involved"),
}
_PARTNER_FIELDS = ("name", "kind", "email", "phone", "website", "notes", "active")
_CONTACT_FIELDS = ("name", "email", "phone", "position")


def record_types() -> list[RecordType]:
    """Partners, so that they can be discussed, followed and shown in feeds."""
    return [
        RecordType(
            RECORD_TYPE,
            N_("Partner"),
            Partner,
            "/ui/partner/{id}",
            title="name",
            resource="partner",
        )
    ]


# --- validation --------------------------------------------------------------------------------


def _text(values: Mapping[str, Any], name: str, limit: int, errors: dict[str, str]) -> str:
    text = str(values.get(name) or "").strip()
    if len(text) > limit:
        errors[name] = f"at most {limit} characters"
    return text


def _email(value: Any, field: str, errors: dict[str, str]) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return normalize.normalise_email(text)
    except normalize.IdentityError as exc:
        errors[field] = str(exc)
        return None


def _phone(value: Any, region: str, field: str, errors: dict[str, str]) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return normalize.normalise_phone(text, region)
    except normalize.IdentityError as exc:
        errors[field] = str(exc)
        return None


def _website(value: Any, errors: dict[str, str]) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        errors["website"] = "give an http:// or https:// address"
    elif len(text) > 300:
        errors["website"] = "at most 300 characters"
    return text


def clean_partner(values: Mapping[str, Any], region: str) -> dict[str, Any]:
    """The partner fields present in ``values``, normalised; ``Invalid`` naming each bad one."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    if "name" in values:
        clean["name"] = _text(values, "name", 200, errors)
        if not clean["name"] and "name" not in errors:
            errors["name"] = "the name is required"
    if "kind" in values:
        clean["kind"] = str(values.get("kind") or "").strip()
        if clean["kind"] not in PARTNER_KINDS:
            errors["kind"] = f"choose one of {', '.join(PARTNER_KINDS)}"
    if "email" in values:
        clean["email"] = _email(values["email"], "email", errors)
    if "phone" in values:
        clean["phone"] = _phone(values["phone"], region, "phone", errors)
    if "website" in values:
        clean["website"] = _website(values["website"], errors)
    if "notes" in values:
        clean["notes"] = _text(values, "notes", 20_000, errors)
    if "active" in values:
        clean["active"] = bool(values["active"])
    unknown = set(values) - set(_PARTNER_FIELDS)
    for name in sorted(unknown):
        errors[name] = "unknown field"
    if errors:
        raise Invalid(errors)
    return clean


def clean_contact(values: Mapping[str, Any], region: str) -> dict[str, Any]:
    """The contact fields present in ``values``, normalised; ``Invalid`` naming each bad one."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    if "name" in values:
        clean["name"] = _text(values, "name", 200, errors)
        if not clean["name"] and "name" not in errors:
            errors["name"] = "the name is required"
    if "email" in values:
        clean["email"] = _email(values["email"], "email", errors)
    if "phone" in values:
        clean["phone"] = _phone(values["phone"], region, "phone", errors)
    if "position" in values:
        clean["position"] = _text(values, "position", 100, errors)
    for name in sorted(set(values) - set(_CONTACT_FIELDS)):
        errors[name] = "unknown field"
    if errors:
        raise Invalid(errors)
    return clean


# --- partners ----------------------------------------------------------------------------------


def get_partner(session: Session, partner_id: int) -> Partner:
    """The partner, else ``NotFoundError``."""
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise NotFoundError(f"partner {partner_id} not found")
    return partner


def create_partner(session: Session, values: Mapping[str, Any], region: str = "VN") -> Partner:
    """Add a partner; ``name`` and ``kind`` are required."""
    clean = clean_partner({"name": "", "kind": "", **values}, region)
    partner = Partner(**clean)
    session.add(partner)
    session.flush()
    return partner


def update_partner(
    session: Session,
    partner: Partner,
    values: Mapping[str, Any],
    version: int | None,
    region: str = "VN",
) -> Partner:
    """Change a partner read at ``version``; ``StaleVersion`` when it changed meanwhile."""
    if version is not None and version != partner.version:
        raise StaleVersion(partner)
    clean = clean_partner(values, region)
    for name, value in clean.items():
        setattr(partner, name, value)
    session.flush()
    return partner


def delete_partner(session: Session, partner: Partner) -> None:
    """Delete a partner with its contacts and links; its contacts' sign-ins are deactivated
    and their shares removed, so nobody keeps seeing customers through a deleted partner."""
    for contact in list(
        session.scalars(select(PartnerContact).where(PartnerContact.partner_id == partner.id))
    ):
        remove_contact(session, contact)
    session.delete(partner)
    session.flush()


def search_condition(text: str) -> Any:
    """Partners whose name contains ``text`` (case-insensitive for Latin letters)."""
    return Partner.name.icontains(text.strip(), autoescape=True)


# --- contacts ----------------------------------------------------------------------------------


def get_contact(session: Session, partner_id: int, contact_id: int) -> PartnerContact:
    """The partner's contact, else ``NotFoundError``."""
    contact = session.get(PartnerContact, contact_id)
    if contact is None or contact.partner_id != partner_id:
        raise NotFoundError(f"contact {contact_id} of partner {partner_id} not found")
    return contact


def contacts_of(session: Session, partner_id: int) -> list[PartnerContact]:
    """The partner's contacts, by name."""
    return list(
        session.scalars(
            select(PartnerContact)
            .where(PartnerContact.partner_id == partner_id)
            .order_by(PartnerContact.name, PartnerContact.id)
        )
    )


def add_contact(
    session: Session, partner: Partner, values: Mapping[str, Any], region: str = "VN"
) -> PartnerContact:
    """Add a person at ``partner``; ``name`` is required."""
    clean = clean_contact({"name": "", **values}, region)
    contact = PartnerContact(partner_id=partner.id, **clean)
    session.add(contact)
    session.flush()
    return contact


def update_contact(
    session: Session, contact: PartnerContact, values: Mapping[str, Any], region: str = "VN"
) -> PartnerContact:
    """Change a contact. An invited contact keeps their sign-in e-mail (the user's own)."""
    clean = clean_contact(values, region)
    if contact.user_id is not None and "email" in clean and clean["email"] != contact.email:
        raise Invalid({"email": "this contact signs in with it; it cannot change"})
    for name, value in clean.items():
        setattr(contact, name, value)
    session.flush()
    return contact


def remove_contact(session: Session, contact: PartnerContact) -> None:
    """Remove a contact; their sign-in (if invited) is deactivated and their shares removed."""
    from core import users

    if contact.user_id is not None:
        user = session.get(User, contact.user_id)
        session.execute(delete(Share).where(Share.user_id == contact.user_id))
        if user is not None and user.is_active:
            users.deactivate(session, user)
    session.delete(contact)
    session.flush()


@dataclass(frozen=True)
class Invitation:
    """A partner contact's new sign-in; ``password`` is shown once and never stored in clear."""

    user_id: int
    email: str
    password: str


def invite(session: Session, contact: PartnerContact) -> Invitation:
    """Give ``contact`` a sign-in with the ``partner`` role and a generated password.

    The password is returned once (only its hash is stored); they may change it on their
    account page. ``Invalid`` when the contact has no e-mail address; ``Conflict`` when they
    already have a sign-in or the address is taken.
    """
    from core import auth, users

    if contact.user_id is not None:
        raise Conflict(f"contact {contact.id} has already been invited")
    if not contact.email:
        raise Invalid({"email": "the contact has no e-mail address to sign in with"})
    if session.scalar(select(User.id).where(User.email == contact.email)) is not None:
        raise Conflict(f"a user with e-mail {contact.email} already exists")
    password = auth.generate_password()
    try:
        user = users.create_user(
            session,
            contact.email,
            contact.name,
            password,
            roles=(PARTNER_ROLE,),
            initial_password=True,
        )
    except ValueError as exc:
        raise Invalid({"email": str(exc)}) from None
    contact.user_id = user.id
    session.flush()
    return Invitation(user.id, user.email, password)


# --- links -------------------------------------------------------------------------------------


def link(
    crm: Crm,
    session: Session,
    user: SignedIn,
    partner_id: int,
    record_type: str,
    record_id: int,
    relation: str,
    note: str = "",
) -> PartnerLink:
    """Record the partner's part in a customer or an opportunity the user may see.

    ``NotFoundError`` for a missing partner or a record the user may not see, ``Invalid`` for
    a relation or record type that does not apply, ``Conflict`` when the same link exists.
    """
    get_partner(session, partner_id)
    errors: dict[str, str] = {}
    if relation not in PARTNER_RELATIONS:
        errors["relation"] = f"choose one of {', '.join(PARTNER_RELATIONS)}"
    if record_type not in LINKABLE:
        errors["record_type"] = f"partners link to {' or '.join(LINKABLE)}"
    if len(note or "") > 2000:
        errors["note"] = "at most 2000 characters"
    if errors:
        raise Invalid(errors)
    kind = collab_records.require_visible(crm, session, user, record_type, record_id)
    duplicate = select(PartnerLink.id).where(
        PartnerLink.partner_id == partner_id,
        PartnerLink.record_type == record_type,
        PartnerLink.record_id == record_id,
        PartnerLink.relation == relation,
    )
    if session.scalar(duplicate) is not None:
        raise Conflict(f"the partner is already linked to {record_type} {record_id} as {relation}")
    row = PartnerLink(
        partner_id=partner_id,
        record_type=record_type,
        record_id=record_id,
        customer_id=collab_records.customer_of(session, kind, record_id),
        relation=relation,
        note=(note or "").strip(),
    )
    try:
        with session.begin_nested():  # another request may add the same link meanwhile
            session.add(row)
    except IntegrityError:
        raise Conflict(
            f"the partner is already linked to {record_type} {record_id} as {relation}"
        ) from None
    return row


def visible_links(crm: Crm, user: SignedIn) -> Any:
    """A query of the links whose record the user may see."""
    query = select(PartnerLink)
    condition = collab_records.visible_condition(
        crm, user, PartnerLink.record_type, PartnerLink.record_id
    )
    return query if condition is None else query.where(condition)


def get_link(crm: Crm, session: Session, user: SignedIn, partner_id: int, link_id: int) -> Any:
    """The partner's link on a record the user may see, else ``NotFoundError``."""
    found = session.scalar(
        visible_links(crm, user).where(
            PartnerLink.id == link_id, PartnerLink.partner_id == partner_id
        )
    )
    if found is None:
        raise NotFoundError(f"link {link_id} of partner {partner_id} not found")
    return found


def unlink(session: Session, row: PartnerLink) -> None:
    """Remove a link."""
    session.delete(row)
    session.flush()


def links_of_partner(crm: Crm, session: Session, user: SignedIn, partner_id: int) -> list[Any]:
    """The partner's links on records the user may see, newest first."""
    query = visible_links(crm, user).where(PartnerLink.partner_id == partner_id)
    return list(session.scalars(query.order_by(PartnerLink.id.desc())))


def links_of_record(
    crm: Crm, session: Session, user: SignedIn, record_type: str, record_id: int
) -> list[tuple[PartnerLink, Partner]]:
    """The partners linked to a record the user may see (``NotFoundError`` otherwise)."""
    collab_records.require_visible(crm, session, user, record_type, record_id)
    rows = session.execute(
        select(PartnerLink, Partner)
        .join(Partner, Partner.id == PartnerLink.partner_id)
        .where(PartnerLink.record_type == record_type, PartnerLink.record_id == record_id)
        .order_by(Partner.name, PartnerLink.id)
    )
    return [(row[0], row[1]) for row in rows]


def titles(crm: Crm, session: Session, rows: list[PartnerLink]) -> dict[tuple[str, int], str]:
    """The titles of the records ``rows`` point to, by ``(record_type, record_id)``."""
    return collab_records.titles_of(crm, session, {(r.record_type, r.record_id) for r in rows})


# --- shares ------------------------------------------------------------------------------------


def _partner_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    holds = session.scalar(
        select(UserRole.user_id).where(UserRole.user_id == user_id, UserRole.role == PARTNER_ROLE)
    )
    if user is None or not user.is_active or holds is None:
        raise Invalid({"user_id": "customers are shared with active partner contacts only"})
    return user


def _visible_customer(crm: Crm, session: Session, user: SignedIn, customer_id: int) -> None:
    if not records.can_see_customer(crm, session, user, customer_id):
        raise NotFoundError(f"customer {customer_id} not found")


def share_customer(
    crm: Crm,
    session: Session,
    user: SignedIn,
    customer_id: int,
    user_id: int,
    note: str = "",
) -> Share:
    """Share a customer ``user`` may see with partner contact ``user_id``.

    ``Invalid`` when ``user_id`` is not an active partner user, ``Conflict`` when the customer
    is already shared with them.
    """
    _visible_customer(crm, session, user, customer_id)
    _partner_user(session, user_id)
    if session.get(Share, (customer_id, user_id)) is not None:
        raise Conflict(f"customer {customer_id} is already shared with user {user_id}")
    granted_by = user.id or None  # the command line acts as no user
    row = Share(customer_id=customer_id, user_id=user_id, granted_by=granted_by, note=note.strip())
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict(f"customer {customer_id} is already shared with user {user_id}") from None
    return row


def unshare(crm: Crm, session: Session, user: SignedIn, customer_id: int, user_id: int) -> None:
    """Stop sharing a customer with a partner user; ``NotFoundError`` when it was not shared."""
    _visible_customer(crm, session, user, customer_id)
    row = session.get(Share, (customer_id, user_id))
    if row is None:
        raise NotFoundError(f"customer {customer_id} is not shared with user {user_id}")
    session.delete(row)
    session.flush()


def shares_of(
    crm: Crm, session: Session, user: SignedIn, customer_id: int
) -> list[tuple[Share, User]]:
    """Who the customer is shared with (partner users), by name."""
    _visible_customer(crm, session, user, customer_id)
    rows = session.execute(
        select(Share, User)
        .join(User, User.id == Share.user_id)
        .where(Share.customer_id == customer_id)
        .order_by(User.name, User.id)
    )
    return [(row[0], row[1]) for row in rows]


def partner_users(session: Session) -> list[tuple[int, str]]:
    """Active partner contacts with a sign-in, as ``(user id, "name <e-mail>")``."""
    rows = session.execute(
        select(User.id, User.name, User.email)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == PARTNER_ROLE, User.is_active)
        .order_by(User.name, User.id)
    )
    return [(user_id, f"{name} <{email}>") for user_id, name, email in rows]
