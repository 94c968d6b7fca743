"""View specifications: what the staff UI shows, declared in Python and registered by hooks.

The core and every plugin describe their screens with these dataclasses and return them from
the ``web_views`` hook; the UI generator (``core.web.ui``) renders them. A module changes views
it does not own in ``extend_views`` (add a column, a form field, a filter, a tab, an action),
the way Odoo's view inheritance does, but in Python.

Labels are English msgids: wrap them in :func:`core.i18n.N_` so they are extracted for
translation; the UI translates them when it renders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Widgets the generator knows; chosen from the column type unless a field names one.
WIDGETS = (
    "text",
    "textarea",
    "number",
    "money",
    "date",
    "datetime",
    "checkbox",
    "select",
    "email",
    "tel",
    "reference",
    "tags",
    "readonly",
)


@dataclass
class Resource:
    """A model the UI lists, shows and edits, and the rules for doing so.

    ``name`` is the URL key (``/ui/<name>``) and the permission prefix (``<name>:read``...).
    ``owner_column`` and ``customer_column`` name the columns record rules follow
    (:mod:`core.records`). ``search(text, crm)`` returns the condition the list's search
    box applies. ``create(ctx, values)`` and ``update(ctx, record, values, version)`` replace
    the generic save (which sets columns and relies on the model's audit mixin) when a model
    needs its own service logic; they raise :class:`FormErrors` for invalid input.
    """

    name: str
    model: type
    label: str
    plural: str
    title_field: str = "name"
    owner_column: str | None = None
    customer_column: str | None = None
    search: Callable[[str, Any], Any] | None = None
    create: Callable[..., Any] | None = None
    update: Callable[..., Any] | None = None
    permission_prefix: str | None = None

    def permission(self, action: str) -> str:
        """The permission for ``action`` on this resource (``customer:read``...)."""
        return f"{self.permission_prefix or self.name}:{action}"


@dataclass
class Column:
    """A column of a list. ``sortable`` columns must be indexed (checked when views load).

    ``value`` computes the cell from the row when the column is not a model attribute;
    ``choices`` shows a stored code by its (translated) label.
    """

    name: str
    label: str | None = None
    widget: str | None = None
    sortable: bool = False
    sort_key: str | None = None
    link: bool = False
    value: Callable[[Any], Any] | None = None
    choices: Sequence[tuple[str, str]] | None = None


@dataclass
class Filter:
    """A filter of a list: a select of ``choices`` or a free text box.

    Without ``apply`` the filter compares the column ``name`` with the chosen value.
    ``choices`` may be a callable taking the database session; ``default`` applies when the
    request does not set the filter (an empty value turns it off).
    """

    name: str
    label: str | None = None
    choices: Sequence[tuple[str, str]] | Callable[[Any], Sequence[tuple[str, str]]] | None = None
    apply: Callable[[str], Any] | None = None
    default: str | None = None


@dataclass
class Action:
    """A button on a row or on the selected rows of a list.

    ``run(ctx, ids)`` does the work inside the request's write transaction and returns a
    message for the user; ``permission`` guards it. On a detail page, ``when(record)`` decides
    whether the button shows (an archived record offers "Restore", not "Archive").
    """

    name: str
    label: str
    run: Callable[..., str]
    permission: str
    confirm: str | None = None
    bulk: bool = False
    when: Callable[[Any], bool] | None = None


@dataclass
class Field:
    """A field of a form or a detail page.

    ``load(session, record)`` and ``save(session, record, value)`` let a field live outside
    the model's own columns (a plugin's table, a customer's identities). ``readonly`` may be a
    callable ``(record, principal) -> bool``; ``permission`` is needed to change the field.
    """

    name: str
    label: str | None = None
    widget: str | None = None
    required: bool | None = None
    readonly: bool | Callable[[Any, Any], bool] = False
    choices: Sequence[tuple[str, str]] | Callable[[Any], Sequence[tuple[str, str]]] | None = None
    help: str = ""
    section: str = ""
    permission: str | None = None
    max_length: int | None = None
    load: Callable[[Any, Any], Any] | None = None
    save: Callable[[Any, Any, Any], None] | None = None


@dataclass
class Tab:
    """A tab on a detail page: either fields, or ``render(ctx, record) -> HTML``."""

    name: str
    label: str
    fields: list[Field] = field(default_factory=list)
    render: Callable[[Any, Any], str] | None = None


@dataclass
class ListView:
    """The list screen of a resource."""

    resource: str
    columns: list[Column]
    default_sort: str = "-id"
    filters: list[Filter] = field(default_factory=list)
    search_label: str | None = None
    #: The order of search results when the user did not pick one: sorting a big result set
    #: by another column reads every match, while the search column's own index pages it.
    search_sort: str | None = None
    row_actions: list[Action] = field(default_factory=list)
    bulk_actions: list[Action] = field(default_factory=list)
    page_size: int = 50

    @property
    def id(self) -> str:
        """The view's id, ``<resource>.list``."""
        return f"{self.resource}.list"


@dataclass
class FormView:
    """The create and edit screen of a resource; ``sections`` order the fields' sections."""

    resource: str
    fields: list[Field]
    sections: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The view's id, ``<resource>.form``."""
        return f"{self.resource}.form"


@dataclass
class DetailView:
    """The page of one record: fields, tabs and (for customers) the 360 slots."""

    resource: str
    fields: list[Field]
    tabs: list[Tab] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The view's id, ``<resource>.detail``."""
        return f"{self.resource}.detail"


@dataclass
class KanbanView:
    """Cards grouped by ``group_by`` (a pipeline stage); dragging a card saves the new group.

    ``groups`` may be a callable taking the database session (stages configured per team).
    """

    resource: str
    group_by: str
    groups: Sequence[tuple[str, str]] | Callable[[Any], Sequence[tuple[str, str]]]
    card_fields: list[str] = field(default_factory=list)
    limit_per_group: int = 50

    @property
    def id(self) -> str:
        """The view's id, ``<resource>.kanban``."""
        return f"{self.resource}.kanban"


@dataclass
class MenuItem:
    """An entry of the navigation; shown to users holding ``permission``.

    ``badge`` is the URL of a JSON ``{"count": n}`` (unread notifications, open alerts); the
    page fetches it after loading and every minute, and shows the number when it is not zero.
    """

    label: str
    url: str
    permission: str | None = None
    order: int = 100
    badge: str | None = None


@dataclass
class Slot:
    """A panel of a record page (the customer 360) that a module fills.

    ``render(ctx, record_id)`` returns HTML (use ``ctx.render(template, ...)``, which
    autoescapes). It runs in its own request, so a slow or failing slot does not break the page.
    """

    id: str
    title: str
    render: Callable[[Any, int], str]
    permission: str | None = None
    resource: str = "customer"
    order: int = 100


@dataclass
class Widget:
    """A number or a chart on the home dashboard.

    ``compute(ctx)`` returns a number (``kind="number"``), an amount in minor units of the
    default currency (``kind="money"``) or ``{"labels": [...],
    "series": [{"label": ..., "data": [...]}]}`` (``kind="chart"``, drawn by Chart.js).
    """

    id: str
    title: str
    compute: Callable[[Any], Any]
    kind: str = "number"
    chart: str = "bar"
    permission: str | None = None
    order: int = 100
    note: str = ""


def insert_after(items: list[Any], name: str, new: Any) -> None:
    """Insert ``new`` after the item called ``name`` (at the end if there is none)."""
    for position, item in enumerate(items):
        if getattr(item, "name", None) == name:
            items.insert(position + 1, new)
            return
    items.append(new)


class FormErrors(ValueError):
    """Invalid form input: a message per field name (``""`` for the form as a whole)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in errors.items()))
        self.errors = errors


class StaleRecord(ValueError):
    """The record changed since the form was opened (optimistic locking)."""
