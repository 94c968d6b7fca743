"""Reading and writing a resource's records for the generated screens.

Lists are keyset pages over ``(sort column, id)``, so a deep page costs what the first one does;
counts stop at ``COUNT_CAP``; the user's record rule is part of every query. Forms are parsed
into typed values with a message per bad field; saving goes through the resource's own
``create``/``update`` when it has them (customers do, for identities and search keys), else sets
the columns, with the model's audit mixin recording the change and its ``version`` column
refusing stale writes.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session

from core import i18n, records
from core.i18n import N_, Msg
from core.ui import registry as reg
from core.ui.specs import Field, FormErrors, ListView, Resource, StaleRecord

if TYPE_CHECKING:
    from core.auth import SignedIn
    from core.runtime import Crm

COUNT_CAP = 10_000


class BadCursor(ValueError):
    """A cursor that this list did not produce."""


@dataclass
class Page:
    """One page of a list."""

    rows: list[Any]
    next_cursor: str | None
    total: int
    capped: bool
    sort: str


def visible_condition(crm: Crm, user: SignedIn, resource: Resource) -> Any:
    """The record rule of ``user`` on ``resource`` (``None`` when they see every row).

    Rules are asked for by the model's permission prefix (``operational.ticket``), the name its
    API and record type use, so a screen and the API of one model always apply the same rules.
    """
    model = resource.model
    return records.visible(
        crm,
        user,
        resource.permission_prefix or resource.name,
        owner_column=getattr(model, resource.owner_column) if resource.owner_column else None,
        customer_column=(
            getattr(model, resource.customer_column) if resource.customer_column else None
        ),
    )


def filtered(
    crm: Crm, user: SignedIn, resource: Resource, view: ListView | None, params: Mapping[str, str]
) -> Select:
    """The rows of ``resource`` the user may see, narrowed by the list's filters and search."""
    model = resource.model
    query = select(model)
    rule = visible_condition(crm, user, resource)
    if rule is not None:
        query = query.where(rule)
    for flt in view.filters if view else ():
        value = params.get(flt.name)
        if value is None:
            value = flt.default
        if value in (None, ""):
            continue
        query = query.where(flt.apply(value) if flt.apply else getattr(model, flt.name) == value)
    text = (params.get("q") or "").strip()
    if text and resource.search is not None:
        condition = resource.search(text, crm)
        if condition is not None:
            query = query.where(condition)
    return query


def sorts(view: ListView) -> dict[str, str]:
    """Allowed sort names mapped to the column each sorts on."""
    allowed = {"id": "id"}
    for column in view.columns:
        if column.sortable:
            allowed[column.name] = column.sort_key or column.name
    return allowed


def _encode(values: list[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, dt.datetime | dt.date) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def _decode(cursor: str, column: Any) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise BadCursor("this page link is not valid; start from the first page") from None
    if not isinstance(values, list) or not values or not isinstance(values[-1], int):
        raise BadCursor("this page link is not valid; start from the first page")
    if len(values) == 2 and isinstance(values[0], str):
        python_type = getattr(column.type, "python_type", str)
        if python_type is dt.datetime:
            values[0] = dt.datetime.fromisoformat(values[0])
        elif python_type is dt.date:
            values[0] = dt.date.fromisoformat(values[0])
    return values


def page(
    session: Session,
    query: Select,
    resource: Resource,
    view: ListView,
    sort: str | None,
    cursor: str | None,
    limit: int | None = None,
    searching: bool = False,
) -> Page:
    """One keyset page of ``query`` sorted by ``sort`` (``name`` or ``-name``).

    Without a sort, searches use the view's ``search_sort`` and other lists its default.
    """
    model = resource.model
    allowed = sorts(view)
    sort = sort or (view.search_sort if searching and view.search_sort else view.default_sort)
    descending = sort.startswith("-")
    key = allowed.get(sort.lstrip("-"))
    if key is None:
        sort, descending, key = view.default_sort, view.default_sort.startswith("-"), "id"
        key = allowed.get(sort.lstrip("-"), "id")
    limit = limit or view.page_size
    ident = model.id
    column = getattr(model, key)
    after = _decode(cursor, column) if cursor else None
    if key == "id":
        query = query.order_by(ident.desc() if descending else ident)
        if after:
            query = query.where(ident < after[-1] if descending else ident > after[-1])
    else:
        if descending:
            query = query.order_by(column.desc(), ident.desc())
        else:
            query = query.order_by(column, ident)
        if after:
            if len(after) != 2:
                raise BadCursor("this page link is not valid; start from the first page")
            pair = tuple_(column, ident)
            query = query.where(pair < tuple_(*after) if descending else pair > tuple_(*after))
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = _encode([last.id] if key == "id" else [getattr(last, key), last.id])
    return Page(rows, next_cursor, 0, False, sort)


def count_capped(session: Session, query: Select, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many rows ``query`` returns, counting at most ``cap``; ``(cap, True)`` beyond."""
    model_id = query.selected_columns[0].table.c.id if query.selected_columns else None
    inner = query.order_by(None).with_only_columns(model_id).limit(cap + 1).subquery()
    counted = session.scalar(select(func.count()).select_from(inner)) or 0
    return (cap, True) if counted > cap else (counted, False)


def get(crm: Crm, session: Session, user: SignedIn, resource: Resource, record_id: int) -> Any:
    """The record, or ``None`` when it does not exist or the user's record rule hides it."""
    model = resource.model
    query = select(model).where(model.id == record_id)
    rule = visible_condition(crm, user, resource)
    if rule is not None:
        query = query.where(rule)
    return session.scalars(query).first()


def stream(session: Session, query: Select, batch: int = 1000) -> Iterator[Any]:
    """Every row of ``query`` by ascending id, read in keyset batches (for exports)."""
    model_id = query.selected_columns[0].table.c.id
    last = 0
    while True:
        rows = list(session.scalars(query.where(model_id > last).order_by(model_id).limit(batch)))
        if not rows:
            return
        yield from rows
        last = rows[-1].id
        session.expunge_all()


# --- forms ------------------------------------------------------------------------------------


def field_value(session: Session, record: Any, item: Field) -> Any:
    """The current value of a field on ``record`` (``None`` for a new record)."""
    if record is None:
        return None
    if item.load is not None:
        return item.load(session, record)
    return getattr(record, item.name, None)


def is_readonly(item: Field, record: Any, principal: Any) -> bool:
    """Whether the user may not change ``item`` on ``record``."""
    if item.permission and not principal.can(item.permission):
        return True
    if callable(item.readonly):
        return bool(item.readonly(record, principal))
    return bool(item.readonly)


def choices_of(item: Field, session: Session) -> list[tuple[str, str]]:
    """The options of a select field."""
    if item.choices is None:
        return []
    return list(item.choices(session) if callable(item.choices) else item.choices)


def parse(
    session: Session,
    resource: Resource,
    fields: list[Field],
    form: Mapping[str, str],
    record: Any,
    principal: Any,
    currency: str,
) -> dict[str, Any]:
    """Typed values of the editable ``fields`` from ``form``; ``FormErrors`` for bad ones."""
    from core.money import Money

    model = resource.model
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in fields:
        if is_readonly(item, record, principal):
            continue
        widget = reg.widget_for(model, item)
        raw = form.get(item.name)
        if widget == "checkbox":
            values[item.name] = raw in ("on", "true", "1")
            continue
        text = (raw or "").strip()
        if not text:
            if reg.required(model, item):
                errors[item.name] = N_("This field is required.")
            else:
                values[item.name] = None
            continue
        limit = reg.max_length(model, item)
        try:
            if widget in ("number", "reference"):
                if not text.lstrip("-").isdigit():
                    raise ValueError(N_("Enter a whole number."))
                values[item.name] = int(text)
            elif widget == "money":
                amount = i18n.parse_amount(text, i18n.current_language())
                values[item.name] = Money.parse(amount, currency).amount
            elif widget == "date":
                values[item.name] = dt.date.fromisoformat(text)
            elif widget == "datetime":
                values[item.name] = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
            elif widget == "select":
                if text not in {value for value, _ in choices_of(item, session)}:
                    raise ValueError(N_("Choose one of the options."))
                values[item.name] = text
            else:
                if limit and len(text) > limit:
                    raise ValueError(Msg(N_("At most %(limit)s characters."), limit=limit))
                values[item.name] = text
        except (ValueError, InvalidOperation) as exc:
            message = exc.args[0] if exc.args else ""
            if isinstance(message, Msg) or str(message).endswith("."):
                errors[item.name] = message
            else:
                errors[item.name] = N_("Enter a valid value.")
    if errors:
        raise FormErrors(errors)
    return values


def foreign_references(
    ctx: Any, resource: Resource, record: Any, values: dict[str, Any]
) -> dict[str, str]:
    """The values naming a record the user may not see, or giving the record to a person or
    team out of the user's reach (:func:`core.records.may_give_to`), with their messages.

    A form's reference fields (a customer, a deal, an assignee) are numbers anyone can type:
    they are checked against the same record rules as the pages, on create and on change.
    """
    user = ctx.principal.user
    by_table = {r.model.__table__.name: r for r in ctx.ui.registry.resources.values()}
    errors: dict[str, str] = {}
    for name, value in values.items():
        column = reg.column_of(resource.model, name)
        if value is None or column is None or not column.foreign_keys:
            continue
        if isinstance(value, str):  # a select's option
            if not value.isdigit():
                errors[name] = N_("Enter a whole number.")
                continue
            value = int(value)
        if record is not None and getattr(record, name, None) == value:
            continue
        target = next(iter(column.foreign_keys)).column.table.name
        if target == "core_user":
            if not records.may_give_to(ctx.session, user, value):
                errors[name] = N_("You may give records only to yourself or your team.")
        elif target == "core_team":
            if value != user.team_id and not ctx.principal.can("customer:assign"):
                errors[name] = N_("You may choose only your own team.")
        elif (
            target in by_table and get(ctx.crm, ctx.session, user, by_table[target], value) is None
        ):
            errors[name] = N_("No such record, or you may not see it.")
    return errors


def save(
    ctx: Any,
    resource: Resource,
    fields: list[Field],
    record: Any,
    values: dict[str, Any],
    version: int | None,
) -> Any:
    """Create (``record is None``) or update a record; returns it. Raises ``StaleRecord``, and
    ``FormErrors`` for references out of the user's reach (:func:`foreign_references`)."""
    session: Session = ctx.session
    refused = foreign_references(ctx, resource, record, values)
    if refused:
        raise FormErrors(refused)
    external = {f.name: f for f in fields if f.save is not None}
    own = {k: v for k, v in values.items() if k not in external}
    if record is None:
        if resource.create is not None:
            record = resource.create(ctx, own)
        else:
            if resource.owner_column and own.get(resource.owner_column) is None:
                own[resource.owner_column] = ctx.principal.user.id  # the creator owns it
            record = resource.model(**own)
            session.add(record)
            session.flush()
    else:
        current = getattr(record, "version", None)
        if version is not None and current is not None and current != version:
            raise StaleRecord(f"{resource.label} was changed by someone else")
        if resource.update is not None:
            resource.update(ctx, record, own, version)
        else:
            for name, value in own.items():
                setattr(record, name, value)
            session.flush()
    for name, item in external.items():
        if name in values:
            item.save(session, record, values[name])
    session.flush()
    return record
