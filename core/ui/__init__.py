"""The public API for staff UI views: what plugins import to declare their screens."""

from core.i18n import N_
from core.ui.specs import (
    Action,
    Column,
    DetailView,
    Field,
    Filter,
    FormErrors,
    FormView,
    KanbanView,
    ListView,
    MenuItem,
    Resource,
    Slot,
    StaleRecord,
    Tab,
    Widget,
    insert_after,
)

__all__ = [
    "N_",
    "Action",
    "Column",
    "DetailView",
    "Field",
    "Filter",
    "FormErrors",
    "FormView",
    "KanbanView",
    "ListView",
    "MenuItem",
    "Resource",
    "Slot",
    "StaleRecord",
    "Tab",
    "Widget",
    "insert_after",
]
