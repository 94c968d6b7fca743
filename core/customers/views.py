"""The customer screens: list, form, customer 360 page, its core slots and dashboard widgets.

Declared with the same view API plugins use (``core.ui``); registered by ``core.builtin``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import and_, exists, func, or_, select

from core.customers import service
from core.customers.fields import FieldError
from core.customers.models import COMPANY, PERSON, Customer, CustomerIdentity, CustomerTag
from core.i18n import N_, Msg
from core.normalize import IdentityError, normalise_identity, search_key
from core.ui import (
    Action,
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
    Widget,
)

_TOP = "\U0010ffff"
KIND_CHOICES = [(PERSON, N_("Person")), (COMPANY, N_("Company"))]
IDENTITY_FIELDS = ("email", "phone")


def search(text: str, crm: Any) -> Any:
    """Accent-insensitive name prefix, or an exact e-mail or phone when the text is one."""
    conditions = []
    key = search_key(text)
    if key:
        conditions.append(and_(Customer.search_key >= key, Customer.search_key < key + _TOP))
    channel = "email" if "@" in text else "phone" if sum(c.isdigit() for c in text) >= 6 else None
    if channel:
        try:
            value = normalise_identity(channel, text, crm.settings.default_region)
        except IdentityError:
            value = None
        if value:
            conditions.append(
                Customer.id.in_(
                    select(CustomerIdentity.customer_id).where(
                        CustomerIdentity.channel == channel, CustomerIdentity.value == value
                    )
                )
            )
    return or_(*conditions) if conditions else None


def _identity(channel: str) -> Any:
    def load(session: Any, customer: Customer) -> str | None:
        return next((i.value for i in customer.identities if i.channel == channel), None)

    return load


def _tags_text(session: Any, customer: Customer) -> str:
    return ", ".join(customer.tags)


def _split(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str | None], list[str]]:
    identities = {c: values.pop(c) for c in IDENTITY_FIELDS if c in values}
    tags_text = values.pop("tags", None)
    tags = [t.strip() for t in (tags_text or "").split(",") if t.strip()]
    return values, identities, tags


def _errors(exc: Exception) -> FormErrors:
    if isinstance(exc, FieldError | IdentityError):
        return FormErrors({exc.field: str(exc)})
    if isinstance(exc, service.IdentityConflict):
        message = Msg(
            N_("%(value)s already belongs to customer %(customer)s."),
            value=exc.value,
            customer=exc.customer_id,
        )
        return FormErrors({exc.channel: message})
    raise exc


def create(ctx: Any, values: dict[str, Any]) -> Customer:
    """Create a customer from the form (the creator owns it unless an owner is chosen)."""
    values, identities, tags = _split(dict(values))
    values.setdefault("owner_id", None)
    if values["owner_id"] is None:
        values["owner_id"] = ctx.principal.user.id
    values["kind"] = values.get("kind") or PERSON
    pairs = [(c, v) for c, v in identities.items() if v]
    try:
        return service.create(ctx.session, ctx.crm, values, pairs, tags)
    except (FieldError, IdentityError, service.IdentityConflict) as exc:
        raise _errors(exc) from None


def update(ctx: Any, customer: Customer, values: dict[str, Any], version: int | None) -> None:
    """Save the form: fields, tags, and the e-mail and phone identities it shows."""
    from core.ui import StaleRecord

    values, identities, tags = _split(dict(values))
    session, crm = ctx.session, ctx.crm
    try:
        service.update(session, crm, customer, values, version or customer.version, tags)
        for channel, value in identities.items():
            current = next((i for i in customer.identities if i.channel == channel), None)
            wanted = (
                normalise_identity(channel, value, crm.settings.default_region) if value else None
            )
            if current is not None and current.value == wanted:
                continue
            if current is not None:
                service.remove_identity(session, crm, customer, current.id)
            if wanted:
                service.add_identity(session, crm, customer, channel, value)
    except service.StaleVersion:
        raise StaleRecord("customer changed meanwhile") from None
    except (FieldError, IdentityError, service.IdentityConflict) as exc:
        raise _errors(exc) from None


def _tag_filter(value: str) -> Any:
    return exists().where(
        CustomerTag.customer_id == Customer.id, CustomerTag.tag == value.strip().lower()
    )


def _archived_filter(value: str) -> Any:
    return Customer.archived.is_(value == "true") if value in ("true", "false") else None


def _users(session: Any) -> list[tuple[str, str]]:
    from core.models import User

    return [
        (str(i), name)
        for i, name in session.execute(
            select(User.id, User.name).where(User.is_active).order_by(User.name)
        )
    ]


def _archive(archived: bool) -> Any:
    def run(ctx: Any, ids: list[int]) -> str:
        for customer in ctx.session.scalars(select(Customer).where(Customer.id.in_(ids))):
            service.set_archived(ctx.session, ctx.crm, customer, archived)
        return N_("Archived.") if archived else N_("Restored.")

    return run


def resources() -> list[Any]:
    """The customer resource, its views, and a user resource for owner names."""
    from core.models import User

    customer = Resource(
        name="customer",
        model=Customer,
        label=N_("Customer"),
        plural=N_("Customers"),
        title_field="display_name",
        owner_column="owner_id",
        search=search,
        create=create,
        update=update,
    )
    user = Resource(name="user", model=User, label=N_("User"), plural=N_("Users"))
    archive = Action(
        "archive",
        N_("Archive"),
        _archive(True),
        "customer:archive",
        N_("Archive these customers?"),
        bulk=True,
    )
    restore = Action("restore", N_("Restore"), _archive(False), "customer:archive", bulk=True)
    archive_one = replace(archive, when=lambda customer: not customer.archived)
    restore_one = replace(restore, when=lambda customer: customer.archived)
    list_view = ListView(
        resource="customer",
        columns=[
            Column("display_name", N_("Name"), sortable=True, sort_key="search_key", link=True),
            Column("kind", N_("Kind"), choices=KIND_CHOICES),
            Column("company_id", N_("Company")),
            Column("country", N_("Country")),
            Column("owner_id", N_("Owner")),
            Column("created_at", N_("Created")),
        ],
        default_sort="-id",
        filters=[
            Filter("kind", N_("Kind"), KIND_CHOICES),
            Filter("tag", N_("Tag"), apply=_tag_filter),
            Filter("country", N_("Country"), apply=lambda v: Customer.country == v.strip().upper()),
            Filter(
                "owner_id",
                N_("Owner"),
                _users,
                apply=lambda v: Customer.owner_id == int(v) if v.isdigit() else None,
            ),
            Filter(
                "archived",
                N_("Archived"),
                [("false", N_("Active")), ("true", N_("Archived"))],
                apply=_archived_filter,
                default="false",
            ),
        ],
        search_label=N_("Name, e-mail or phone"),
        search_sort="display_name",
        bulk_actions=[archive, restore],
    )
    fields = [
        Field("kind", N_("Kind"), choices=KIND_CHOICES, required=True, section=N_("Identity")),
        Field(
            "display_name",
            N_("Name"),
            required=False,
            section=N_("Identity"),
            help=N_("Left empty, it is made from the given and family names."),
        ),
        Field("given_name", N_("Given name"), section=N_("Identity")),
        Field("family_name", N_("Family name"), section=N_("Identity")),
        Field("company_id", N_("Company (customer id)"), widget="number", section=N_("Identity")),
        Field(
            "email",
            N_("E-mail"),
            widget="email",
            load=_identity("email"),
            max_length=254,
            section=N_("Contact"),
        ),
        Field(
            "phone",
            N_("Phone"),
            widget="tel",
            load=_identity("phone"),
            max_length=50,
            section=N_("Contact"),
        ),
        Field("address", N_("Address"), section=N_("Contact")),
        Field("country", N_("Country (two letters)"), section=N_("Contact")),
        Field("language", N_("Preferred language"), section=N_("Contact")),
        Field(
            "tags",
            N_("Tags (comma-separated)"),
            load=_tags_text,
            max_length=500,
            section=N_("Sales"),
        ),
        Field(
            "owner_id",
            N_("Owner"),
            widget="select",
            choices=_users,
            permission="customer:assign",
            section=N_("Sales"),
        ),
        Field("source_channel", N_("Source channel"), section=N_("Sales")),
        Field("external_ref", N_("External reference"), section=N_("Sales")),
    ]
    form = FormView("customer", fields, sections=[N_("Identity"), N_("Contact"), N_("Sales")])
    detail = DetailView(
        "customer",
        [
            Field("kind", N_("Kind"), choices=KIND_CHOICES),
            Field("company_id", N_("Company"), widget="reference"),
            Field("email", N_("E-mail"), load=_identity("email")),
            Field("phone", N_("Phone"), load=_identity("phone")),
            Field("address", N_("Address")),
            Field("country", N_("Country")),
            Field("language", N_("Preferred language")),
            Field("tags", N_("Tags"), load=_tags_text),
            Field("owner_id", N_("Owner"), widget="reference"),
            Field("source_channel", N_("Source channel")),
            Field("external_ref", N_("External reference")),
            Field("updated_at", N_("Updated")),
        ],
        actions=[archive_one, restore_one],
    )
    return [customer, user, list_view, form, detail]


# --- customer 360 slots -----------------------------------------------------------------------


def _identities_slot(ctx: Any, customer_id: int) -> str:
    rows = ctx.session.scalars(
        select(CustomerIdentity)
        .where(CustomerIdentity.customer_id == customer_id)
        .order_by(CustomerIdentity.channel, CustomerIdentity.id)
    ).all()
    return ctx.render("customers/identities.html", identities=rows)


def _duplicates_slot(ctx: Any, customer_id: int) -> str:
    from core import records
    from core.customers import identify

    customer = ctx.session.get(Customer, customer_id)
    candidates = [
        c
        for c in identify.duplicates(ctx.session, customer)
        if records.can_see_customer(ctx.crm, ctx.session, ctx.principal.user, c.customer.id)
    ]
    return ctx.render("customers/duplicates.html", candidates=candidates[:10])


def _members_slot(ctx: Any, customer_id: int) -> str:
    from core import records

    query = (
        select(Customer).where(Customer.company_id == customer_id).order_by(Customer.id).limit(20)
    )
    rule = records.customer_condition(ctx.crm, ctx.principal.user)
    if rule is not None:
        query = query.where(rule)
    return ctx.render("customers/members.html", members=ctx.session.scalars(query).all())


def slots() -> list[Slot]:
    """The core's panels on the customer 360 page."""
    return [
        Slot("core.identities", N_("Identities"), _identities_slot, "customer:read", order=10),
        Slot("core.people", N_("People at this company"), _members_slot, "customer:read", order=20),
        Slot(
            "core.duplicates",
            N_("Possible duplicates"),
            _duplicates_slot,
            "customer:read",
            order=90,
        ),
    ]


# --- dashboard --------------------------------------------------------------------------------


def _visible(ctx: Any) -> Any:
    from core import records

    query = select(func.count()).select_from(Customer).where(Customer.archived.is_(False))
    rule = records.customer_condition(ctx.crm, ctx.principal.user)
    return query.where(rule) if rule is not None else query


def _customer_count(ctx: Any) -> int:
    return ctx.session.scalar(_visible(ctx)) or 0


def _by_source(ctx: Any) -> dict[str, Any]:
    from core import records

    label = func.coalesce(Customer.source_channel, "—")
    query = (
        select(label, func.count())
        .where(Customer.archived.is_(False))
        .group_by(label)
        .order_by(func.count().desc())
        .limit(8)
    )
    rule = records.customer_condition(ctx.crm, ctx.principal.user)
    if rule is not None:
        query = query.where(rule)
    rows = ctx.session.execute(query).all()
    return {
        "labels": [r[0] for r in rows],
        "series": [{"label": ctx.gettext(N_("Customers")), "data": [r[1] for r in rows]}],
    }


def widgets() -> list[Widget]:
    """The core's dashboard widgets."""
    return [
        Widget(
            "core.customers",
            N_("Active customers"),
            _customer_count,
            permission="customer:read",
            order=10,
            note=N_("Customers you may see, not archived."),
        ),
        Widget(
            "core.sources",
            N_("Customers by source channel"),
            _by_source,
            kind="chart",
            chart="bar",
            permission="customer:read",
            order=20,
            note=N_("The eight largest source channels of active customers you may see."),
        ),
    ]


def menu() -> list[MenuItem]:
    """The navigation entries of the core."""
    return [
        MenuItem(N_("Customers"), "/ui/customer", "customer:read", order=10),
        MenuItem(N_("Modules"), "/admin/modules", "module:read", order=900),
        MenuItem(N_("Users"), "/admin/users", "user:read", order=910),
        MenuItem(N_("API tokens"), "/admin/tokens", "user:update", order=920),
        MenuItem(N_("Checklist"), "/admin/checklist", "checklist:read", order=930),
        MenuItem(N_("Audit log"), "/admin/audit", "audit:read", order=940),
    ]
