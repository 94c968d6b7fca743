"""The staff UI: a list, a form and a page of notes, and an entry in the navigation.

The core generates the screens from these specifications (``/ui/<module>_note``...) and
applies the permissions and record rules named by the resource.
"""

from typing import Any

from core.errors import Invalid
from core.records import can_see_customer
from core.ui import (
    N_,
    Column,
    DetailView,
    Field,
    FormErrors,
    FormView,
    ListView,
    MenuItem,
    Resource,
)
from crm_loyalty import NAME, notes
from crm_loyalty.models import Note
from crm_loyalty.permissions import NOTE, READ

#: The resource's URL key: ``/ui/<module>_note``.
RESOURCE = f"{NAME}_note"


def resources() -> list[Any]:
    """The note resource and its three screens."""
    return [
        Resource(
            RESOURCE,
            Note,
            N_("Note"),
            N_("Notes"),
            title_field="title",
            owner_column="owner_id",
            customer_column="customer_id",
            permission_prefix=NOTE,
            search=lambda text, crm: Note.title.startswith(text, autoescape=True),
            create=_create,
            update=_update,
        ),
        ListView(
            RESOURCE,
            [
                Column("title", link=True),
                Column("customer_id", N_("Customer")),
                Column("created_at", N_("Written")),
            ],
        ),
        FormView(
            RESOURCE,
            [
                Field("customer_id", N_("Customer")),
                Field("title"),
                Field("body"),
            ],
        ),
        DetailView(
            RESOURCE,
            [
                Field("customer_id", N_("Customer")),
                Field("body"),
                Field("created_at", N_("Written")),
            ],
        ),
    ]


def menu() -> list[MenuItem]:
    """Notes in the navigation, for those who may read them."""
    return [MenuItem(N_("Notes"), f"/ui/{RESOURCE}", READ, order=60)]


def _check_customer(ctx: Any, customer_id: int | None) -> None:
    user = ctx.principal.user
    if customer_id is None or not can_see_customer(ctx.crm, ctx.session, user, customer_id):
        raise FormErrors({"customer_id": N_("No such customer.")})


def _create(ctx: Any, values: dict[str, Any]) -> Note:
    _check_customer(ctx, values.get("customer_id"))
    try:
        return notes.add(
            ctx.session,
            values["customer_id"],
            values.get("title"),
            values.get("body"),
            owner_id=ctx.principal.user.id,
        )
    except Invalid as exc:
        raise FormErrors(exc.errors) from None


def _update(ctx: Any, note: Note, values: dict[str, Any], version: int | None) -> None:
    if values.get("customer_id", note.customer_id) != note.customer_id:
        _check_customer(ctx, values["customer_id"])
    try:
        notes.change(ctx.session, note, values)
    except Invalid as exc:
        raise FormErrors(exc.errors) from None
