"""The partner screens: the ``partner`` resource (list, form, detail with contacts and links),
the customer 360 panels "Partners" and "Shared with", and the menu entry.

The panels' forms post with htmx to :mod:`plugins.collaborative.partner_pages`, which answers
with the refreshed panel (or, without JavaScript, redirects back to the record's page).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from sqlalchemy import select

from core.errors import Invalid, NotFoundError, StaleVersion
from core.i18n import N_
from core.ui import (
    Column,
    DetailView,
    Field,
    Filter,
    FormErrors,
    FormView,
    ListView,
    MenuItem,
    Resource,
    Slot,
    StaleRecord,
    Tab,
)
from core.web.ui.context import csrf_token
from plugins.collaborative import partners
from plugins.collaborative.models import PARTNER_KINDS, PARTNER_RELATIONS, Partner

if TYPE_CHECKING:
    from core.web.ui.context import UIContext

READ = "collaborative.partner:read"
UPDATE = "collaborative.partner:update"
SHARE = "collaborative.share:manage"
PARTNERS_SLOT = "collaborative.partners"
SHARES_SLOT = "collaborative.shares"
KIND_CHOICES = [(kind, partners.KIND_LABELS[kind]) for kind in PARTNER_KINDS]
RELATION_CHOICES = [(rel, partners.RELATION_LABELS[rel]) for rel in PARTNER_RELATIONS]


def _form_errors(exc: Invalid) -> FormErrors:
    return FormErrors(dict(exc.errors))


def _region(ctx: UIContext) -> str:
    return ctx.crm.settings.default_region


def _create(ctx: UIContext, values: dict[str, Any]) -> Partner:
    try:
        return partners.create_partner(ctx.session, values, _region(ctx))  # type: ignore[arg-type]
    except Invalid as exc:
        raise _form_errors(exc) from None


def _update(ctx: UIContext, record: Partner, values: dict[str, Any], version: Any) -> None:
    try:
        partners.update_partner(ctx.session, record, values, version, _region(ctx))  # type: ignore[arg-type]
    except StaleVersion:
        raise StaleRecord("partner changed meanwhile") from None
    except Invalid as exc:
        raise _form_errors(exc) from None


def contacts_tab(ctx: UIContext, partner: Partner, error: str | None = None) -> Markup:
    """The partner's contacts, with add, remove and invite forms for those allowed."""
    return ctx.render(
        "collaborative/partner_contacts.html",
        partner=partner,
        contacts=partners.contacts_of(ctx.session, partner.id),  # type: ignore[arg-type]
        can_update=ctx.can(UPDATE),
        can_invite=ctx.can(SHARE),
        csrf=csrf_token(ctx.request),
        error=error,
    )


def links_tab(ctx: UIContext, partner: Partner) -> Markup:
    """The customers and opportunities the partner is linked to (those the user may see)."""
    session = ctx.session
    assert session is not None and ctx.principal is not None
    rows = partners.links_of_partner(ctx.crm, session, ctx.principal.user, partner.id)
    kinds = _record_kinds(ctx)
    return ctx.render(
        "collaborative/partner_links.html",
        partner=partner,
        links=rows,
        titles=partners.titles(ctx.crm, session, rows),
        kinds=kinds,
        relation_labels=partners.RELATION_LABELS,
        can_update=ctx.can(UPDATE),
        csrf=csrf_token(ctx.request),
    )


def _record_kinds(ctx: UIContext) -> dict[str, Any]:
    from core.records import record_types

    return record_types(ctx.crm)


def resources() -> list[Any]:
    """The partner resource and its list, form and detail views."""
    kind_column = Column("kind", N_("Kind"), choices=KIND_CHOICES)
    return [
        Resource(
            "partner",
            Partner,
            N_("Partner"),
            N_("Partners"),
            title_field="name",
            search=lambda text, crm: partners.search_condition(text),
            create=_create,
            update=_update,
            permission_prefix="collaborative.partner",
        ),
        ListView(
            "partner",
            [
                Column("name", N_("Name"), sortable=True, link=True),
                kind_column,
                Column("email", N_("E-mail")),
                Column("phone", N_("Phone")),
            ],
            default_sort="name",
            filters=[Filter("kind", N_("Kind"), KIND_CHOICES)],
            search_label=N_("Name"),
            search_sort="name",
        ),
        FormView(
            "partner",
            [
                Field("name", N_("Name"), required=True, max_length=200),
                Field("kind", N_("Kind"), widget="select", choices=KIND_CHOICES, required=True),
                Field("email", N_("E-mail"), widget="email", max_length=254),
                Field("phone", N_("Phone"), widget="tel", max_length=40),
                Field("website", N_("Website"), max_length=300, help=N_("http:// or https://")),
                Field("notes", N_("Notes"), widget="textarea", required=False),
                Field("active", N_("Active"), widget="checkbox"),
            ],
        ),
        DetailView(
            "partner",
            [
                Field("kind", N_("Kind"), choices=KIND_CHOICES),
                Field("email", N_("E-mail")),
                Field("phone", N_("Phone")),
                Field("website", N_("Website")),
                Field("notes", N_("Notes")),
                Field("active", N_("Active")),
            ],
            tabs=[
                Tab("contacts", N_("Contacts"), render=contacts_tab),
                Tab("links", N_("Customers and opportunities"), render=links_tab),
            ],
        ),
    ]


# --- customer 360 ------------------------------------------------------------------------------


def partners_panel(
    ctx: UIContext, customer_id: int, error: str | None = None, values: dict[str, str] | None = None
) -> Markup:
    """The partners of one customer, with a form to link another (``NotFoundError`` when the
    user may not see the customer)."""
    session = ctx.session
    assert session is not None and ctx.principal is not None
    rows = partners.links_of_record(ctx.crm, session, ctx.principal.user, "customer", customer_id)
    choices = []
    if ctx.can(UPDATE):
        choices = list(
            session.execute(
                select(Partner.id, Partner.name).where(Partner.active).order_by(Partner.name)
            )
        )
    return ctx.render(
        "collaborative/partner_slot.html",
        customer_id=customer_id,
        links=rows,
        partner_choices=choices,
        relation_choices=RELATION_CHOICES,
        relation_labels=partners.RELATION_LABELS,
        kind_labels=partners.KIND_LABELS,
        can_update=ctx.can(UPDATE),
        csrf=csrf_token(ctx.request),
        error=error,
        values=values or {},
    )


def shares_panel(ctx: UIContext, customer_id: int, error: str | None = None) -> Markup:
    """Who the customer is shared with, with share and unshare forms."""
    session = ctx.session
    assert session is not None and ctx.principal is not None
    rows = partners.shares_of(ctx.crm, session, ctx.principal.user, customer_id)
    shared = {share.user_id for share, _ in rows}
    choices = [(uid, label) for uid, label in partners.partner_users(session) if uid not in shared]
    return ctx.render(
        "collaborative/partner_shares.html",
        customer_id=customer_id,
        shares=rows,
        user_choices=choices,
        csrf=csrf_token(ctx.request),
        error=error,
    )


def _partners_slot(ctx: UIContext, customer_id: int) -> Markup:
    try:
        return partners_panel(ctx, customer_id)
    except NotFoundError:
        return Markup("")


def _shares_slot(ctx: UIContext, customer_id: int) -> Markup:
    try:
        return shares_panel(ctx, customer_id)
    except NotFoundError:
        return Markup("")


def slots(crm: Any) -> list[Slot]:
    """The customer 360 panels: its partners; who it is shared with (share managers only)."""
    return [
        Slot(PARTNERS_SLOT, N_("Partners"), _partners_slot, READ, order=60),
        Slot(SHARES_SLOT, N_("Shared with"), _shares_slot, SHARE, order=61),
    ]


def menu() -> list[MenuItem]:
    """The partners list in the navigation."""
    return [MenuItem(N_("Partners"), "/ui/partner", READ, order=66)]
