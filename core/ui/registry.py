"""Collects the views, menus, slots and widgets of the core and enabled modules, and checks them.

Built once when the web app starts: ``web_views`` from every module, then ``extend_views`` so a
module can change views it does not own. A view that names an unknown resource, sorts on a
column without an index, or groups a kanban by a missing column is refused with a message that
names the module; the rest of the UI still loads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from core.ui.specs import (
    Column,
    DetailView,
    Field,
    FormView,
    KanbanView,
    ListView,
    MenuItem,
    Resource,
    Slot,
    Widget,
)

if TYPE_CHECKING:
    from core.runtime import Crm

log = logging.getLogger("crm.ui")
VIEW_TYPES = (ListView, FormView, DetailView, KanbanView)


class ViewError(ValueError):
    """A view that cannot be shown as declared."""


@dataclass
class UIRegistry:
    """Everything the staff UI shows, keyed for the routes."""

    resources: dict[str, Resource] = field(default_factory=dict)
    views: dict[str, Any] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    menus: list[MenuItem] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    widgets: list[Widget] = field(default_factory=list)
    #: Stylesheets and scripts of modules that every page loads (``web_assets``).
    assets: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def view(self, resource: str, kind: str) -> Any:
        """The ``kind`` view (``list``, ``form``, ``detail``, ``kanban``) of ``resource``."""
        return self.views.get(f"{resource}.{kind}")

    def resource(self, name: str) -> Resource:
        """The resource called ``name``; ``KeyError`` when none is registered."""
        return self.resources[name]


def column_of(model: type, name: str) -> sa.Column | None:
    """The table column ``name`` of ``model`` (``None`` for computed attributes)."""
    table = getattr(model, "__table__", None)
    if table is None:
        return None
    return table.columns.get(name)


def indexed(model: type, name: str) -> bool:
    """Whether ``name`` leads an index (or is the primary key) of ``model``'s table."""
    table = model.__table__
    if [c.name for c in table.primary_key.columns][:1] == [name]:
        return True
    for index in table.indexes:
        if [c.name for c in index.columns][:1] == [name]:
            return True
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint) and [c.name for c in constraint.columns][
            :1
        ] == [name]:
            return True
    column = table.columns.get(name)
    return bool(column is not None and (column.index or column.unique))


def widget_for(model: type, item: Field | Column) -> str:
    """The widget of a field or column: its own, or one chosen from the column type."""
    if item.widget:
        return item.widget
    if getattr(item, "choices", None):
        return "select"
    column = column_of(model, item.name)
    if column is None:
        return "text"
    if column.info.get("widget"):
        return column.info["widget"]
    if column.foreign_keys:
        return "reference"
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return "checkbox"
    if isinstance(kind, sa.Integer):
        return "number"
    if isinstance(kind, sa.DateTime) or isinstance(getattr(kind, "impl", None), sa.DateTime):
        return "datetime"
    if isinstance(kind, sa.Date):
        return "date"
    if isinstance(kind, sa.Text):
        return "textarea"
    return "text"


def required(model: type, item: Field) -> bool:
    """Whether a form field must be filled: its own flag, or a NOT NULL column without default."""
    if item.required is not None:
        return item.required
    column = column_of(model, item.name)
    if column is None or column.primary_key:
        return False
    return not column.nullable and column.default is None and column.server_default is None


def max_length(model: type, item: Field) -> int | None:
    """The longest text a field accepts: its own limit or the column's ``String`` length."""
    if item.max_length:
        return item.max_length
    column = column_of(model, item.name)
    return getattr(column.type, "length", None) if column is not None else None


def _check(registry: UIRegistry, view: Any) -> None:
    resource = registry.resources.get(view.resource)
    if resource is None:
        raise ViewError(f"view {view.id}: no resource {view.resource!r}")
    model = resource.model
    if isinstance(view, ListView):
        for column in view.columns:
            if not column.sortable:
                continue
            key = column.sort_key or column.name
            if not indexed(model, key):
                raise ViewError(
                    f"view {view.id}: column {column.name!r} is sortable but {key!r} has no "
                    "index; lists on big tables sort only on indexed columns"
                )
            if column_of(model, key).nullable:
                raise ViewError(
                    f"view {view.id}: column {column.name!r} is sortable but {key!r} may be "
                    "NULL; keyset pages need a NOT NULL sort column"
                )
        sort = view.default_sort.lstrip("-")
        if sort != "id" and sort not in {c.name for c in view.columns if c.sortable}:
            raise ViewError(f"view {view.id}: default sort {view.default_sort!r} is not sortable")
    if isinstance(view, KanbanView) and column_of(model, view.group_by) is None:
        raise ViewError(f"view {view.id}: no column {view.group_by!r} to group by")


def _contributions(
    registry: UIRegistry, runtime: Crm, hook: str, **kwargs: Any
) -> list[tuple[str, Any]]:
    """``(module, item)`` pairs of ``hook``; a module whose hook raised becomes a problem."""
    items: list[tuple[str, Any]] = []
    for result in runtime.collect(hook, **kwargs):
        if result.error is not None:
            registry.problems.append(f"{result.plugin}: {hook} failed: {result.error!r}")
        elif result.value is not None:
            items.extend((result.plugin, item) for item in result.value)
    return items


def build(crm: Crm) -> UIRegistry:
    """Collect and check the UI of the core and every enabled module."""
    registry = UIRegistry()
    for module, item in _contributions(registry, crm, "web_views", crm=crm):
        if isinstance(item, Resource):
            registry.resources[item.name] = item
            registry.owners[f"resource:{item.name}"] = module
        elif isinstance(item, VIEW_TYPES):
            registry.views[item.id] = item
            registry.owners[item.id] = module
        else:
            registry.problems.append(f"{module}: web_views returned {type(item).__name__}")
    for result in crm.collect("extend_views", crm=crm, views=registry.views):
        if result.error is not None:
            registry.problems.append(f"{result.plugin}: extend_views failed: {result.error!r}")
    for view_id, view in list(registry.views.items()):
        try:
            _check(registry, view)
        except ViewError as exc:
            registry.problems.append(f"{registry.owners.get(view_id, '?')}: {exc}")
            del registry.views[view_id]
    registry.menus = sorted(
        (m for _, m in _contributions(registry, crm, "menu_items", crm=crm)),
        key=lambda m: m.order,
    )
    slots = _contributions(registry, crm, "customer_slots", crm=crm)
    widgets = _contributions(registry, crm, "dashboard_widgets", crm=crm)
    registry.owners.update({f"slot:{slot.id}": module for module, slot in slots})
    registry.owners.update({f"widget:{widget.id}": module for module, widget in widgets})
    registry.slots = sorted((slot for _, slot in slots), key=lambda s: s.order)
    registry.widgets = sorted((widget for _, widget in widgets), key=lambda w: w.order)
    for module, url in _contributions(registry, crm, "web_assets"):
        if isinstance(url, str) and url.startswith(f"/static/{module}/"):
            registry.assets.append(url)
        else:
            registry.problems.append(f"{module}: web_assets must be under /static/{module}/")
    for problem in registry.problems:
        log.error("UI: %s", problem)
    return registry


def label_of(item: Field | Column) -> str:
    """The label shown for a field or column (an English msgid, translated when rendered)."""
    return item.label or item.name.replace("_", " ").capitalize()


__all__ = [
    "UIRegistry",
    "ViewError",
    "build",
    "column_of",
    "indexed",
    "label_of",
    "max_length",
    "required",
    "widget_for",
]
