"""Mailings: templates, audiences, scheduling, sending, unsubscribes and replies.

A mailing renders one template for each customer of its audience. Scheduling resolves the
audience into ``MailingRecipient`` rows (``queued``); ``send_due`` (``crm mailings send-due``,
or a background worker) sends the queued recipients of mailings whose time has come, outside
any web request.

Delivery guarantee: **at most once**. Each recipient goes through short transactions of its
own, so that no database transaction stays open while the SMTP server is talked to:

1. *claim*: ``UPDATE ... SET claimed_at = now, attempts = attempts + 1 WHERE id = :id AND
   status = 'queued' AND claimed_at IS NULL``. Only one worker's update matches; the others
   skip the recipient. The claim is the pair (``claimed_at``, ``attempts``).
2. *hand-over*: once the SMTP server accepted the envelope (MAIL, RCPT) and right before DATA,
   ``sent_at`` is set, on condition that the claim is still ours. From here the message may
   have reached the server.
3. *sent*: after the server's 250, ``status = 'sent'`` and the interaction is logged.

A definite refusal (4xx, or a broken connection before DATA) puts the recipient back in the
queue (``queued``, claim and ``sent_at`` cleared, the error kept) until ``MAX_ATTEMPTS``; a 5xx
makes it ``failed``. A claim older than ``ABANDONED_AFTER`` belongs to a worker that died: if it
never reached the hand-over (``sent_at`` empty) the message was surely not sent and the claim is
released for a retry; if it did, nobody knows whether the server took the message, so it becomes
``failed`` with "outcome unknown" and is **not** retried automatically (a connection lost during
DATA is treated the same). We prefer a rare lost mail, visible and re-queueable by an operator
(``crm mailings requeue --unknown``), to a duplicate in a customer's inbox.

The protocol itself is ``core.outbox`` (``OUTBOX`` says which columns play which role).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.orm import Session

from core import audit, records
from core.customers import identify, listing
from core.customers.models import KINDS, Customer, CustomerIdentity
from core.db import utcnow
from core.errors import Conflict, CrmError, Invalid, StaleVersion
from core.mail import DeliveryError, Mailer, recipient
from core.normalize import IdentityError, normalise_email
from core.outbox import Claim, Outbox
from plugins.operational import interactions
from plugins.operational.models import (
    RECIPIENT_STATUSES,
    Mailing,
    MailingRecipient,
    MailTemplate,
    Unsubscribe,
)

if TYPE_CHECKING:
    from core.auth import SignedIn
    from core.runtime import Crm

MAILING_STATUSES = ("draft", "scheduled", "sending", "sent")
TEMPLATE_FIELDS = (
    "display_name",
    "given_name",
    "family_name",
    "email",
    "company",
    "country",
    "language",
    "tags",
    "unsubscribe_url",
)
FILTER_KEYS = ("tag", "country", "kind", "owner_id")
LIST_KEYS = ("emails", "customer_ids")
MAX_LIST = 100_000
MAX_ATTEMPTS = 5
ABANDONED_AFTER = dt.timedelta(minutes=15)
BATCH = 500
#: The hook an analytical module implements to answer ``{"segment": name}`` audiences.
SEGMENT_HOOK = "mailing_segment"
UNSUBSCRIBE_SALT = "operational.unsubscribe"
UNKNOWN_OUTCOME = (
    "outcome unknown: {why}; not retried automatically, to avoid a duplicate"
    " (`crm mailings requeue MAILING --unknown` if it did not arrive)"
)
_SAMPLE = {
    "display_name": "Nguyễn Văn An",
    "given_name": "An",
    "family_name": "Nguyễn",
    "email": "an@example.com",
    "company": "Công ty ABC",
    "country": "VN",
    "language": "vi",
    "tags": ["vip"],
    "unsubscribe_url": "https://crm.example.com/operational/unsubscribe/sample",
}


class MailingError(CrmError):
    """Sending cannot start (no SMTP server configured)."""


# --- templates ----------------------------------------------------------------------------------

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def _template_line(exc: BaseException) -> int | None:
    """The template line a rendering error happened on (Jinja rewrites tracebacks to it)."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _problem(source: str) -> str | None:
    """What is wrong with one template source, naming the line; ``None`` when it is fine."""
    try:
        parsed = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    unknown = meta.find_undeclared_variables(parsed) - set(TEMPLATE_FIELDS)
    if unknown:
        return (
            f"unknown field {', '.join(sorted(unknown))}; templates may use"
            f" {', '.join(TEMPLATE_FIELDS)}"
        )
    try:
        _ENV.from_string(source).render(_SAMPLE)
    except Exception as exc:  # a template can raise anything (e.g. division by zero)
        line = _template_line(exc)
        return f"line {line}: {exc}" if line else str(exc)
    return None


def check_template(subject: str, body: str) -> None:
    """Raise ``Invalid`` naming the field and line when the subject or body cannot render."""
    errors = {
        name: problem
        for name, source in (("subject", subject), ("body", body))
        if (problem := _problem(source)) is not None
    }
    if errors:
        raise Invalid(errors)


def compile_template(template: MailTemplate) -> tuple[Template, Template]:
    """The subject and body of ``template``, compiled in the sandbox."""
    return _ENV.from_string(template.subject), _ENV.from_string(template.body)


def render(compiled: tuple[Template, Template], context: dict[str, Any]) -> tuple[str, str]:
    """The subject (one line) and plain-text body for ``context``; raises ``TemplateError``."""
    subject, body = compiled
    return " ".join(subject.render(context).split()), body.render(context)


def customer_context(session: Session, customer: Customer, email: str) -> dict[str, Any]:
    """The fields templates see for ``customer`` (missing values are empty strings)."""
    company = session.get(Customer, customer.company_id) if customer.company_id else None
    return {
        "display_name": customer.display_name,
        "given_name": customer.given_name or "",
        "family_name": customer.family_name or "",
        "email": email,
        "company": company.display_name if company else "",
        "country": customer.country or "",
        "language": customer.language or "",
        "tags": list(customer.tags),
    }


def create_template(session: Session, name: str, subject: str, body: str) -> MailTemplate:
    """A new template, checked; ``Conflict`` when the name is taken."""
    check_template(subject, body)
    _check_template_name(session, name, None)
    template = MailTemplate(name=name.strip(), subject=subject, body=body)
    session.add(template)
    session.flush()
    return template


def update_template(
    session: Session, template: MailTemplate, values: dict[str, Any], version: int
) -> MailTemplate:
    """Change ``name``, ``subject`` or ``body`` of a template read at ``version``."""
    if version != template.version:
        raise StaleVersion(template)
    check_template(values.get("subject", template.subject), values.get("body", template.body))
    if "name" in values:
        values["name"] = values["name"].strip()
        _check_template_name(session, values["name"], template.id)
    for key, value in values.items():
        setattr(template, key, value)
    session.flush()
    return template


def _check_template_name(session: Session, name: str, template_id: int | None) -> None:
    found = session.scalar(select(MailTemplate.id).where(MailTemplate.name == name.strip()))
    if found is not None and found != template_id:
        raise Conflict(f"a template named {name.strip()!r} already exists (id {found})")


def template_as_dict(template: MailTemplate) -> dict[str, Any]:
    """Plain data for the API."""
    return {
        name: getattr(template, name)
        for name in ("id", "name", "subject", "body", "created_at", "version")
    }


def preview(
    session: Session, crm: Crm, template: MailTemplate, customer: Customer
) -> dict[str, str]:
    """The subject and body ``customer`` would receive (with a sample unsubscribe link)."""
    email = _first_emails(session, [customer.id]).get(customer.id, "")
    context = {
        **customer_context(session, customer, email),
        "unsubscribe_url": f"{crm.settings.public_url}/operational/unsubscribe/preview",
    }
    try:
        subject, body = render(compile_template(template), context)
    except TemplateError as exc:
        raise Invalid({"template": str(exc)}) from None
    return {"subject": subject, "body": body}


# --- audiences ----------------------------------------------------------------------------------


def _bad_audience(message: str) -> Invalid:
    return Invalid({"audience": message})


def _check_filter(audience: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tag, country = audience.get("tag"), audience.get("country")
    if tag is not None:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > 50:
            raise _bad_audience("tag must be a text of 1 to 50 characters")
        out["tag"] = tag.strip().lower()
    if country is not None:
        if not isinstance(country, str) or not re.fullmatch(r"[A-Za-z]{2}", country.strip()):
            raise _bad_audience("country must be a two-letter code such as VN")
        out["country"] = country.strip().upper()
    if "kind" in audience:
        if audience["kind"] not in KINDS:
            raise _bad_audience(f"kind must be one of {', '.join(KINDS)}")
        out["kind"] = audience["kind"]
    if "owner_id" in audience:
        owner = audience["owner_id"]
        if not isinstance(owner, int) or isinstance(owner, bool) or owner < 1:
            raise _bad_audience("owner_id must be a user id (a whole number from 1)")
        out["owner_id"] = owner
    if not out:
        raise _bad_audience(f"a filter needs a value for at least one of {', '.join(FILTER_KEYS)}")
    return out


def _check_list(audience: dict[str, Any]) -> dict[str, Any]:
    emails, ids = audience.get("emails") or [], audience.get("customer_ids") or []
    if not isinstance(emails, list) or not isinstance(ids, list):
        raise _bad_audience("emails and customer_ids must be lists")
    if len(emails) + len(ids) > MAX_LIST:
        raise _bad_audience(f"at most {MAX_LIST} e-mail addresses and customer ids")
    clean_emails: dict[str, None] = {}
    for value in emails:
        try:
            clean_emails[normalise_email(str(value))] = None
        except IdentityError as exc:
            raise _bad_audience(f"{value!r}: {exc}") from None
    clean_ids: dict[int, None] = {}
    for value in ids:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _bad_audience(f"{value!r} is not a customer id")
        clean_ids[value] = None
    if not clean_emails and not clean_ids:
        raise _bad_audience("the list holds no e-mail address or customer id")
    return {"emails": list(clean_emails), "customer_ids": list(clean_ids)}


def check_audience(audience: Any) -> dict[str, Any]:
    """The audience cleaned: a filter, a segment, or a list; raises ``Invalid`` on ``audience``.

    - filter: any of ``tag``, ``country``, ``kind``, ``owner_id`` (active customers matching all);
    - ``{"segment": name}``: answered by a module implementing ``mailing_segment``;
    - ``{"emails": [...], "customer_ids": [...]}``: a list (what a CSV upload becomes).
    """
    if not isinstance(audience, dict) or not audience:
        raise _bad_audience(
            "give a filter (tag, country, kind, owner_id), a segment, or a list of"
            " emails / customer_ids"
        )
    keys = set(audience)
    unknown = keys - {*FILTER_KEYS, "segment", *LIST_KEYS}
    if unknown:
        raise _bad_audience(f"unknown key {', '.join(sorted(unknown))}")
    if "segment" in keys:
        name = audience["segment"]
        if len(keys) > 1:
            raise _bad_audience("a segment cannot be combined with other keys")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise _bad_audience("segment must be a name of 1 to 100 characters")
        return {"segment": name.strip()}
    if keys & set(LIST_KEYS):
        if keys - set(LIST_KEYS):
            raise _bad_audience(
                "a list of e-mails or customer ids cannot be combined with a filter"
            )
        return _check_list(audience)
    return _check_filter(audience)


_HEADER_NAMES = {"email": "email", "e-mail": "email", "customer_id": "id", "id": "id"}


def _csv_value(line: int, value: str, kind: str | None) -> tuple[str, str | int]:
    """``("email", address)`` or ``("id", number)`` for one cell; ``Invalid`` naming the line."""
    value = value.strip()
    if kind != "email" and value.isdigit() and int(value) > 0:
        return "id", int(value)
    if kind != "id" and "@" in value:
        try:
            return "email", normalise_email(value)
        except IdentityError as exc:
            raise Invalid({"file": f"line {line}: {exc}"}) from None
    expected = {"email": "an e-mail address", "id": "a customer id"}.get(
        kind or "", "an e-mail address or a customer id"
    )
    raise Invalid({"file": f"line {line}: {value!r} is not {expected}"})


def parse_audience_csv(data: bytes) -> dict[str, Any]:
    """A list audience from a UTF-8 CSV file of e-mail addresses and/or customer ids.

    Either one value per line (each an address or an id), or a header row naming columns
    ``email`` and/or ``customer_id`` (other columns are ignored). Bad lines raise ``Invalid``
    naming the line.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid({"file": f"the file is not UTF-8 (byte {exc.start})"}) from None
    columns: dict[int, str] | None = None
    found: dict[str, list[Any]] = {"emails": [], "customer_ids": []}
    for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [(i, c) for i, c in enumerate(row) if c.strip()]
        if not cells:
            continue
        if columns is None and line == 1:
            named = {
                i: _HEADER_NAMES[c.strip().lower()]
                for i, c in cells
                if c.strip().lower() in _HEADER_NAMES
            }
            if named:
                columns = named
                continue
        picked = (
            [(i, c, columns[i]) for i, c in cells if i in columns]
            if columns
            else [(cells[0][0], cells[0][1], None)]
        )
        for _, cell, kind in picked:
            what, value = _csv_value(line, cell, kind)
            found["emails" if what == "email" else "customer_ids"].append(value)
        if len(found["emails"]) + len(found["customer_ids"]) > MAX_LIST:
            raise Invalid({"file": f"line {line}: more than {MAX_LIST} entries"})
    if not found["emails"] and not found["customer_ids"]:
        raise Invalid({"file": "the file lists no e-mail address or customer id"})
    return check_audience(found)


def _chunks(values: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _segment_ids(crm: Crm, session: Session, name: str) -> Iterable[int]:
    """The customer ids a module gives for segment ``name``; ``Invalid`` when none answers."""
    try:
        results = crm.collect(SEGMENT_HOOK, crm=crm, session=session, name=name)
    except AttributeError:  # no enabled module publishes the hook
        results = []
    for result in results:
        if result.error is not None:
            raise _bad_audience(f"module {result.plugin} failed to resolve segment {name!r}")
        if result.value is not None:
            return result.value
    raise _bad_audience(
        f"no enabled module knows segment {name!r}: segments come from a module implementing"
        f" the {SEGMENT_HOOK} hook (the analytical module); use a filter or a list instead"
    )


def _active(ids: list[int], visible: ColumnElement[bool] | None) -> Any:
    query = select(Customer.id).where(Customer.id.in_(ids), Customer.archived.is_(False))
    return query.where(visible) if visible is not None else query


def _resolve(
    session: Session,
    crm: Crm,
    audience: dict[str, Any],
    visible: ColumnElement[bool] | None,
    counts: dict[str, int],
) -> Iterator[list[tuple[int, str | None]]]:
    """Batches of (customer id, address or ``None`` for their first one), each customer once."""
    if "segment" in audience:
        seen: set[int] = set()
        for chunk in _chunks(_segment_ids(crm, session, audience["segment"])):
            if not all(isinstance(c, int) and not isinstance(c, bool) for c in chunk):
                raise _bad_audience(f"segment {audience['segment']!r} gave values that are not ids")
            fresh = [c for c in dict.fromkeys(chunk) if c not in seen]
            seen.update(fresh)
            found = set(session.scalars(_active(fresh, visible)))
            counts["not_found"] += len(fresh) - len(found)
            yield [(c, None) for c in fresh if c in found]
    elif "emails" in audience:
        yield from _resolve_list(session, audience, visible, counts)
    else:
        filters = listing.Filters(**audience, archived=False, visible=visible)
        base = listing.filtered(filters).with_only_columns(Customer.id).order_by(Customer.id)
        last = 0
        while ids := list(session.scalars(base.where(Customer.id > last).limit(BATCH))):
            last = ids[-1]
            yield [(c, None) for c in ids]


def _resolve_list(
    session: Session,
    audience: dict[str, Any],
    visible: ColumnElement[bool] | None,
    counts: dict[str, int],
) -> Iterator[list[tuple[int, str | None]]]:
    seen: set[int] = set()
    for chunk in _chunks(audience["emails"]):
        holders = dict(
            session.execute(
                select(CustomerIdentity.value, CustomerIdentity.customer_id).where(
                    CustomerIdentity.channel == "email", CustomerIdentity.value.in_(chunk)
                )
            ).all()
        )
        found = set(session.scalars(_active(list(set(holders.values())), visible)))
        batch = []
        for email in chunk:
            customer_id = holders.get(email)
            if customer_id not in found:
                counts["not_found"] += 1
            elif customer_id not in seen:
                seen.add(customer_id)
                batch.append((customer_id, email))
        yield batch
    for chunk in _chunks(audience["customer_ids"]):
        found = set(session.scalars(_active(chunk, visible)))
        counts["not_found"] += len([c for c in chunk if c not in found])
        fresh = [c for c in chunk if c in found and c not in seen]
        seen.update(fresh)
        yield [(c, None) for c in fresh]


def _first_emails(session: Session, customer_ids: list[int]) -> dict[int, str]:
    """Each customer's first e-mail identity (the oldest)."""
    rows = session.execute(
        select(CustomerIdentity.customer_id, CustomerIdentity.value)
        .where(CustomerIdentity.channel == "email", CustomerIdentity.customer_id.in_(customer_ids))
        .order_by(CustomerIdentity.id)
    )
    first: dict[int, str] = {}
    for customer_id, value in rows:
        first.setdefault(customer_id, value)
    return first


# --- mailings -----------------------------------------------------------------------------------


def message_id(crm: Crm, mailing_id: int, recipient_id: int) -> str:
    """A unique, unguessable Message-ID naming the mailing and recipient."""
    domain = urlsplit(crm.settings.public_url).hostname or "crm"
    return f"<mailing-{mailing_id}-recipient-{recipient_id}.{secrets.token_hex(8)}@{domain}>"


def _get_template(session: Session, template_id: Any) -> MailTemplate:
    template = session.get(MailTemplate, template_id) if isinstance(template_id, int) else None
    if template is None:
        raise Invalid({"template_id": f"no template {template_id}"})
    return template


def create_mailing(session: Session, values: dict[str, Any], user_id: int | None) -> Mailing:
    """A draft mailing: ``name``, ``template_id``, optional ``audience`` and ``scheduled_at``."""
    _get_template(session, values["template_id"])
    audience = values.get("audience")
    mailing = Mailing(
        name=values["name"].strip(),
        template_id=values["template_id"],
        audience=check_audience(audience) if audience is not None else None,
        scheduled_at=values.get("scheduled_at"),
        status="draft",
        created_by=user_id,
    )
    session.add(mailing)
    session.flush()
    return mailing


def _check_draft(mailing: Mailing, version: int) -> None:
    if version != mailing.version:
        raise StaleVersion(mailing)
    if mailing.status != "draft":
        raise Conflict(f"mailing {mailing.id} is {mailing.status}; only drafts can be changed")


def update_mailing(
    session: Session, mailing: Mailing, values: dict[str, Any], version: int
) -> Mailing:
    """Change a draft's ``name``, ``template_id``, ``audience`` or ``scheduled_at``."""
    _check_draft(mailing, version)
    if "template_id" in values:
        _get_template(session, values["template_id"])
    if values.get("audience") is not None:
        values["audience"] = check_audience(values["audience"])
    if "name" in values:
        values["name"] = values["name"].strip()
    for key, value in values.items():
        setattr(mailing, key, value)
    session.flush()
    return mailing


def schedule(
    session: Session,
    crm: Crm,
    mailing: Mailing,
    version: int,
    at: dt.datetime | None = None,
    user: SignedIn | None = None,
) -> dict[str, int]:
    """Queue a recipient per customer of the draft's audience and schedule it.

    ``user`` restricts the audience to the customers they may see (record rules). Customers
    without an e-mail address or who unsubscribed are skipped and counted; so are listed
    addresses and ids that match no visible, active customer (``not_found``).
    """
    _check_draft(mailing, version)
    if mailing.audience is None:
        raise _bad_audience("the mailing has no audience yet")
    audience = check_audience(mailing.audience)
    visible = records.customer_condition(crm, user) if user is not None else None
    counts = {"queued": 0, "no_email": 0, "unsubscribed": 0, "not_found": 0}
    for batch in _resolve(session, crm, audience, visible, counts):
        _queue(session, crm, mailing, batch, counts)
    mailing.status = "scheduled"
    mailing.scheduled_at = at or mailing.scheduled_at or utcnow()
    session.flush()
    return counts


def _queue(
    session: Session,
    crm: Crm,
    mailing: Mailing,
    batch: list[tuple[int, str | None]],
    counts: dict[str, int],
) -> None:
    if not batch:
        return
    ids = [customer_id for customer_id, _ in batch]
    first = _first_emails(session, [c for c, email in batch if email is None])
    pairs = [(c, email or first.get(c)) for c, email in batch]
    emails = [email for _, email in pairs if email]
    blocked_emails = set(
        session.scalars(select(Unsubscribe.email).where(Unsubscribe.email.in_(emails)))
    )
    blocked_customers = set(
        session.scalars(select(Unsubscribe.customer_id).where(Unsubscribe.customer_id.in_(ids)))
    )
    rows = []
    for customer_id, email in pairs:
        if not email:
            counts["no_email"] += 1
        elif email in blocked_emails or customer_id in blocked_customers:
            counts["unsubscribed"] += 1
        else:
            rows.append(
                MailingRecipient(
                    mailing_id=mailing.id,
                    customer_id=customer_id,
                    email=email,
                    status="queued",
                    attempts=0,
                    message_id=f"<pending-{secrets.token_hex(16)}>",
                )
            )
    session.add_all(rows)
    session.flush()
    for row in rows:
        row.message_id = message_id(crm, mailing.id, row.id)
    session.flush()
    for row in rows:  # large audiences: keep the session's memory flat
        session.expunge(row)
    counts["queued"] += len(rows)


def unschedule(session: Session, mailing: Mailing, version: int) -> Mailing:
    """Back to draft, dropping the queued recipients; ``Conflict`` once sending started."""
    if version != mailing.version:
        raise StaleVersion(mailing)
    if mailing.status != "scheduled":
        raise Conflict(f"mailing {mailing.id} is {mailing.status}; only scheduled ones go back")
    mailing.status = "draft"
    session.flush()  # the version check: a worker that started sending meanwhile wins
    started = session.scalar(
        select(
            exists().where(
                MailingRecipient.mailing_id == mailing.id,
                (MailingRecipient.status != "queued") | MailingRecipient.claimed_at.is_not(None),
            )
        )
    )
    if started:
        raise Conflict(f"mailing {mailing.id} has started sending")
    session.execute(
        MailingRecipient.__table__.delete().where(MailingRecipient.mailing_id == mailing.id)
    )
    return mailing


def status_counts(session: Session, mailing_ids: list[int]) -> dict[int, dict[str, int]]:
    """Recipients per status (and ``total``) of each mailing."""
    counts = {m: {**dict.fromkeys(RECIPIENT_STATUSES, 0), "total": 0} for m in mailing_ids}
    if not mailing_ids:
        return counts
    rows = session.execute(
        select(MailingRecipient.mailing_id, MailingRecipient.status, func.count())
        .where(MailingRecipient.mailing_id.in_(mailing_ids))
        .group_by(MailingRecipient.mailing_id, MailingRecipient.status)
    )
    for mailing_id, status, number in rows:
        counts[mailing_id][status] = number
        counts[mailing_id]["total"] += number
    return counts


def mailing_as_dict(mailing: Mailing, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """Plain data for the API, with the recipients' status counts when given."""
    data = {
        name: getattr(mailing, name)
        for name in (
            "id",
            "name",
            "template_id",
            "audience",
            "scheduled_at",
            "status",
            "created_by",
            "created_at",
            "version",
        )
    }
    data["counts"] = counts or {**dict.fromkeys(RECIPIENT_STATUSES, 0), "total": 0}
    return data


def requeue(session: Session, mailing_id: int, include_unknown: bool = False) -> int:
    """Put failed recipients back in the queue (attempts reset); how many.

    Recipients whose outcome is unknown (the server may have the message) only with
    ``include_unknown``: they may receive the mail twice.
    """
    condition = (MailingRecipient.mailing_id == mailing_id) & (MailingRecipient.status == "failed")
    if not include_unknown:
        condition &= MailingRecipient.sent_at.is_(None)
    moved = session.execute(
        update(MailingRecipient)
        .where(condition)
        .values(status="queued", attempts=0, claimed_at=None, sent_at=None)
    ).rowcount
    if moved:
        _set_mailing_status(session, mailing_id, "sent", "sending")
    return moved


# --- sending ------------------------------------------------------------------------------------


@dataclass
class SendReport:
    """What a ``send_due`` run did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    unknown: int = 0
    unsubscribed: int = 0
    released: int = 0
    mailings_finished: list[int] = field(default_factory=list)
    stopped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return asdict(self)


#: The delivery protocol over the recipients (see the module doc and ``core.outbox``).
OUTBOX = Outbox(
    MailingRecipient,
    status="status",
    queued="queued",
    claimed_at="claimed_at",
    attempts="attempts",
    handover_at="sent_at",
    error="last_error",
    unknown_outcome=UNKNOWN_OUTCOME,
    stopped_while="during sending",
)


@dataclass(frozen=True)
class _Claim:
    recipient_id: int
    mailing_id: int
    customer_id: int
    email: str
    message_id: str
    held: Claim
    context: dict[str, Any]


_UNSUBSCRIBED = "unsubscribed"


class _Unreachable(Exception):
    """The SMTP server cannot be used: the run stops."""


def send_due(crm: Crm, limit: int | None = None, now: dt.datetime | None = None) -> SendReport:
    """Send the queued recipients of mailings whose time has come (at most ``limit``).

    Safe to run in several processes at once; each recipient is sent at most once. Stops early
    (``report.stopped``) when the SMTP server cannot be reached.
    """
    if not crm.settings.smtp_url:
        raise MailingError("CRM_SMTP_URL is not set: say where mail goes (smtp://host:25)")
    report = SendReport()
    now = now or utcnow()
    with Mailer(crm.settings.smtp_url) as mailer:
        for mailing_id in _due_mailings(crm, now):
            _start_mailing(crm, mailing_id)
            _release_abandoned(crm, mailing_id, report)
            if limit is not None and _attempted(report) >= limit:
                break
            try:
                _send_mailing(crm, mailer, mailing_id, report, limit)
            except _Unreachable as exc:
                report.stopped = str(exc)
                break
            if _finish_mailing(crm, mailing_id):
                report.mailings_finished.append(mailing_id)
    return report


def _attempted(report: SendReport) -> int:
    return report.sent + report.retrying + report.failed + report.unknown


def _due_mailings(crm: Crm, now: dt.datetime) -> list[int]:
    with crm.db.session() as session:
        return list(
            session.scalars(
                select(Mailing.id)
                .where(Mailing.status.in_(("scheduled", "sending")), Mailing.scheduled_at <= now)
                .order_by(Mailing.scheduled_at, Mailing.id)
            )
        )


def _set_mailing_status(session: Session, mailing_id: int, old: str, new: str, *where: Any) -> bool:
    """Move a mailing from ``old`` to ``new`` if it still is ``old``; audited."""
    changed = session.execute(
        update(Mailing)
        .where(Mailing.id == mailing_id, Mailing.status == old, *where)
        .values(status=new, version=Mailing.version + 1)
    ).rowcount
    if changed:
        audit.record(
            session, "update", "operational.mailing", mailing_id, {"status": old}, {"status": new}
        )
    return bool(changed)


def _start_mailing(crm: Crm, mailing_id: int) -> None:
    with crm.db.write() as session:
        _set_mailing_status(session, mailing_id, "scheduled", "sending")


def _finish_mailing(crm: Crm, mailing_id: int) -> bool:
    """Mark the mailing sent when no recipient is left in the queue."""
    pending = exists().where(
        MailingRecipient.mailing_id == mailing_id, MailingRecipient.status == "queued"
    )
    with crm.db.write() as session:
        return _set_mailing_status(session, mailing_id, "sending", "sent", ~pending)


def _release_abandoned(crm: Crm, mailing_id: int, report: SendReport) -> None:
    """Settle claims older than ``ABANDONED_AFTER`` (their worker died), see the module doc."""
    with crm.db.write() as session:
        OUTBOX.release_abandoned(
            session,
            utcnow() - ABANDONED_AFTER,
            MAX_ATTEMPTS,
            report,
            MailingRecipient.mailing_id == mailing_id,
        )


def _send_mailing(
    crm: Crm, mailer: Mailer, mailing_id: int, report: SendReport, limit: int | None
) -> None:
    with crm.db.session() as session:
        mailing = session.get(Mailing, mailing_id)
        compiled = compile_template(session.get(MailTemplate, mailing.template_id))  # type: ignore[arg-type,union-attr]
    last = 0
    while True:
        with crm.db.session() as session:
            ids = list(
                session.scalars(
                    select(MailingRecipient.id)
                    .where(
                        MailingRecipient.mailing_id == mailing_id,
                        MailingRecipient.status == "queued",
                        MailingRecipient.claimed_at.is_(None),
                        MailingRecipient.id > last,
                    )
                    .order_by(MailingRecipient.id)
                    .limit(BATCH)
                )
            )
        if not ids:
            return
        for recipient_id in ids:
            if limit is not None and _attempted(report) >= limit:
                return
            _send_one(crm, mailer, compiled, recipient_id, report)
        last = ids[-1]


def _send_one(
    crm: Crm,
    mailer: Mailer,
    compiled: tuple[Template, Template],
    recipient_id: int,
    report: SendReport,
) -> None:
    claim = _claim(crm, recipient_id)
    if claim is None:
        return
    if claim == _UNSUBSCRIBED:
        report.unsubscribed += 1
        return
    assert isinstance(claim, _Claim)
    url = unsubscribe_url(crm, claim.recipient_id, claim.email)
    try:
        subject, body = render(compiled, {**claim.context, "unsubscribe_url": url})
        message = build_message(crm, claim, subject, body, url)
    except (TemplateError, ValueError, TypeError) as exc:
        _settle_failure(
            crm, claim, DeliveryError("rejected", f"the template failed: {exc}"), report
        )
        return
    sender = parseaddr(crm.settings.mail_from)[1] or crm.settings.mail_from
    try:
        accepted = mailer.deliver(message, sender, claim.email, lambda: _handover(crm, claim))
    except DeliveryError as exc:
        _settle_failure(crm, claim, exc, report)
        if exc.kind == "unreachable":
            raise _Unreachable(str(exc)) from None
        return
    if accepted:
        _mark_sent(crm, claim, subject, body)
        report.sent += 1


def _claim(crm: Crm, recipient_id: int) -> _Claim | str | None:
    """Take the recipient for this worker (its own transaction); ``None`` if someone else has it.

    An address that unsubscribed meanwhile is settled as ``"unsubscribed"`` instead.
    """
    free = OUTBOX.free(recipient_id)
    with crm.db.write() as session:
        row = session.execute(
            select(
                MailingRecipient.mailing_id,
                MailingRecipient.customer_id,
                MailingRecipient.email,
                MailingRecipient.message_id,
                MailingRecipient.attempts,
            ).where(free)
        ).first()
        if row is None:
            return None
        if _blocked(session, row.email, row.customer_id):
            done = session.execute(
                update(MailingRecipient).where(free).values(status="unsubscribed")
            ).rowcount
            return _UNSUBSCRIBED if done else None
        held = OUTBOX.claim(session, recipient_id, row.attempts)
        if held is None:
            return None
        customer = session.get(Customer, row.customer_id)
        return _Claim(
            recipient_id=recipient_id,
            mailing_id=row.mailing_id,
            customer_id=row.customer_id,
            email=row.email,
            message_id=row.message_id,
            held=held,
            context=customer_context(session, customer, row.email),  # type: ignore[arg-type]
        )


def _blocked(session: Session, email: str, customer_id: int) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    (Unsubscribe.email == email) | (Unsubscribe.customer_id == customer_id)
                )
            )
        )
    )


def _handover(crm: Crm, claim: _Claim) -> bool:
    """Record that the message is being handed to the server, if the claim is still ours."""
    with crm.db.write() as session:
        return OUTBOX.handover(session, claim.held)


def _mark_sent(crm: Crm, claim: _Claim, subject: str, body: str) -> None:
    """The server accepted the message: mark it sent and log it on the customer's timeline."""
    with crm.db.write() as session:
        OUTBOX.mark_sent(session, claim.held, sent_at=utcnow())
        interactions.log(
            session,
            claim.customer_id,
            "email",
            "email",
            subject or "(no subject)",
            direction="outbound",
            body=body,
            source="mailing",
        )


def _settle_failure(crm: Crm, claim: _Claim, error: DeliveryError, report: SendReport) -> None:
    """Record a failed attempt: back in the queue, ``failed``, or failed with unknown outcome."""
    with crm.db.write() as session:
        OUTBOX.settle_failure(session, claim.held, error, MAX_ATTEMPTS, report)


def build_message(
    crm: Crm, claim: _Claim, subject: str, body: str, unsubscribe_link: str
) -> EmailMessage:
    """The plain-text mail: From, To, Subject, Date, Message-ID and List-Unsubscribe."""
    message = EmailMessage()
    message["From"] = crm.settings.mail_from
    message["To"] = recipient(claim.context["display_name"], claim.email)
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = claim.message_id
    message["List-Unsubscribe"] = f"<{unsubscribe_link}>"
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    return message


# --- unsubscribing ------------------------------------------------------------------------------


def _serializer(secret_key: str) -> Any:
    from itsdangerous import URLSafeSerializer

    return URLSafeSerializer(secret_key, salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(secret_key: str, recipient_id: int, email: str) -> str:
    """A signed token carrying the recipient and address (no database secret needed)."""
    return _serializer(secret_key).dumps([recipient_id, email])


def read_unsubscribe_token(secret_key: str, token: str) -> tuple[int, str] | None:
    """``(recipient id, e-mail)`` from a token we signed; ``None`` for anything else."""
    from itsdangerous import BadData

    try:
        data = _serializer(secret_key).loads(token)
    except BadData:
        return None
    if (
        not isinstance(data, list)
        or len(data) != 2
        or not isinstance(data[0], int)
        or not isinstance(data[1], str)
    ):
        return None
    return data[0], data[1]


def unsubscribe_url(crm: Crm, recipient_id: int, email: str) -> str:
    """The public link that unsubscribes ``email``."""
    token = unsubscribe_token(crm.settings.secret_key, recipient_id, email)
    return f"{crm.settings.public_url}/operational/unsubscribe/{token}"


def is_unsubscribed(session: Session, email: str) -> bool:
    """Whether ``email`` asked for no more mailings."""
    return session.get(Unsubscribe, email) is not None


def unsubscribe(session: Session, crm: Crm, recipient_id: int, email: str) -> bool:
    """Record that ``email`` wants no more mailings; ``False`` if it had said so already.

    Recipients of that address (or its customer) still waiting in a queue are settled as
    ``unsubscribed``, and so is the recipient whose link was used.
    """
    recipient = session.get(MailingRecipient, recipient_id)
    if recipient is not None and recipient.email != email:
        recipient = None
    customer_id = recipient.customer_id if recipient else _customer_of(session, crm, email)
    new = _insert_unsubscribe(session, email, customer_id)
    waiting = (MailingRecipient.status == "queued") & MailingRecipient.sent_at.is_(None)
    who = MailingRecipient.email == email
    if customer_id is not None:
        who = who | (MailingRecipient.customer_id == customer_id)
    session.execute(update(MailingRecipient).where(waiting & who).values(status="unsubscribed"))
    session.execute(
        update(MailingRecipient)
        .where(MailingRecipient.id == recipient_id, MailingRecipient.email == email)
        .where(MailingRecipient.status == "sent")
        .values(status="unsubscribed")
    )
    return new


def _customer_of(session: Session, crm: Crm, email: str) -> int | None:
    try:
        customer = identify.lookup(session, "email", email, crm.settings.default_region)
    except IdentityError:
        return None
    return customer.id if customer else None


def _insert_unsubscribe(session: Session, email: str, customer_id: int | None) -> bool:
    """Insert the address once, even when two confirmations race."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = (
        insert(Unsubscribe)
        .values(email=email, customer_id=customer_id, at=utcnow())
        .on_conflict_do_nothing(index_elements=["email"])
    )
    return bool(session.execute(statement).rowcount)


# --- replies ------------------------------------------------------------------------------------

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


@dataclass
class ReplyResult:
    """How an inbound reply was matched, and what was recorded."""

    matched: bool
    matched_by: str | None = None
    customer_id: int | None = None
    recipient_id: int | None = None
    interaction_id: int | None = None


def _referenced_ids(in_reply_to: str | None, references: str | list[str] | None) -> list[str]:
    """Message-IDs the reply points to, most relevant first (In-Reply-To, then newest refs)."""
    refs = " ".join(references) if isinstance(references, list) else (references or "")

    def ids(text: str) -> list[str]:
        found = _MESSAGE_ID.findall(text)
        return found or [f"<{part}>" for part in text.split() if "@" in part]

    return list(dict.fromkeys([*ids(in_reply_to or ""), *reversed(ids(refs))]))[:50]


def _recipient_for(session: Session, ids: list[str]) -> MailingRecipient | None:
    if not ids:
        return None
    found = {
        r.message_id: r
        for r in session.scalars(
            select(MailingRecipient).where(MailingRecipient.message_id.in_(ids))
        )
    }
    return next((found[i] for i in ids if i in found), None)


def record_reply(
    session: Session,
    crm: Crm,
    sender: str,
    subject: str,
    text: str,
    in_reply_to: str | None = None,
    references: str | list[str] | None = None,
    user: SignedIn | None = None,
) -> ReplyResult:
    """Log an inbound reply on the customer's timeline and mark the recipient ``replied``.

    The recipient is found by the Message-IDs the reply refers to; failing that, the customer by
    the sender's e-mail identity (no recipient is marked then: which mailing is answered is
    unknown). Customers ``user`` may not see count as unknown. Nothing is written when no one
    matches.
    """
    recipient = _recipient_for(session, _referenced_ids(in_reply_to, references))
    if recipient is not None and _visible(session, crm, user, recipient.customer_id):
        customer_id, matched_by = recipient.customer_id, "message_id"
    else:
        recipient = None
        customer_id = _customer_of(session, crm, parseaddr(sender)[1] or sender)
        if customer_id is None or not _visible(session, crm, user, customer_id):
            return ReplyResult(matched=False)
        matched_by = "email"
    interaction = interactions.log(
        session,
        customer_id,
        "email",
        "email",
        subject.strip() or "(no subject)",
        direction="inbound",
        body=text,
        source="reply",
    )
    if recipient is not None:
        recipient.replied_at = utcnow()
        if recipient.status in ("sent", "failed"):
            recipient.status = "replied"
        session.flush()
    return ReplyResult(
        matched=True,
        matched_by=matched_by,
        customer_id=customer_id,
        recipient_id=recipient.id if recipient else None,
        interaction_id=interaction.id,
    )


def _visible(session: Session, crm: Crm, user: SignedIn | None, customer_id: int) -> bool:
    return user is None or records.can_see_customer(crm, session, user, customer_id)
