"""Loyalty: notes on customers, a module for the CRM.

A starting point written by ``crm plugins new``: one table with its migration, a REST API,
screens, a panel on the customer page, a checklist item, a command and an event hook.
Hooks import their code inside the function, so loading the module (``crm --help`` does) stays
cheap. A hook function named like a submodule (``def models()`` next to ``models.py``) would be
replaced by that submodule on import; such hooks carry another name and a ``specname``.
"""

from pathlib import Path

from core import Manifest, hookimpl

HERE = Path(__file__).parent
#: The module's name: the prefix of its tables, permissions, checklist items and templates.
NAME = "loyalty"


@hookimpl
def manifest():
    """What the module is and which core versions it supports."""
    return Manifest(
        name=NAME,
        version="0.1.0",
        summary="Loyalty points for orders, and notes on customers",
        category="sales",
        depends=("operational",),
        core=">=0.1,<1",
    )


@hookimpl
def migrations():
    """The module's Alembic revisions."""
    return HERE / "migrations"


@hookimpl(specname="models")
def own_models():
    """The module's tables."""
    from crm_loyalty.models import Note, PointsEntry

    return [Note, PointsEntry]


@hookimpl(specname="permissions")
def own_permissions():
    """Reading, writing and exporting notes."""
    from crm_loyalty.permissions import declarations

    return declarations()


@hookimpl
def api_routers(crm):
    """REST endpoints, mounted under ``/api/loyalty/``."""
    from crm_loyalty.routes import router

    return [router]


@hookimpl
def web_views(crm):
    """The list, form and page of notes in the staff UI."""
    from crm_loyalty.views import resources

    return resources()


@hookimpl
def menu_items(crm):
    """Notes in the navigation."""
    from crm_loyalty.views import menu

    return menu()


@hookimpl
def customer_slots(crm):
    """The customer's latest notes on the customer page."""
    from crm_loyalty.slots import slots

    return slots()


@hookimpl
def template_dirs():
    """Templates, found as ``loyalty/<file>``."""
    return [HERE / "templates"]


@hookimpl
def checklist_items(crm):
    """Items of ``crm check``."""
    from crm_loyalty.checks import items

    return items()


@hookimpl
def register_commands(cli):
    """``crm loyalty stats``."""
    from crm_loyalty.commands import register

    register(cli)


@hookimpl
def customer_created(crm, customer):
    """Start a new customer's notes with a welcome note."""
    from crm_loyalty.events import on_customer_created

    on_customer_created(crm, customer)


@hookimpl(specname="module_settings")
def own_settings():
    """``currency`` and ``minor_per_point`` under ``[loyalty]``."""
    from crm_loyalty.points import declared_settings

    return declared_settings()


@hookimpl
def order_placed(crm, order):
    """Earn points for every order placed (a hook the operational module publishes)."""
    from crm_loyalty.events import on_order_placed

    on_order_placed(crm, order)
