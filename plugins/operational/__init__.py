"""Operational CRM: everything staff who face customers do (sales, service, marketing).

Products and orders (the transaction history every other module reads), interactions on every
channel and the customer timeline, the sales pipeline, scheduled activities and mailings with
reply tracking, service tickets with SLA and satisfaction surveys, and reports. It publishes the
``order_placed`` hook. Only the public plugin API is used.
"""

from pathlib import Path

from core import Manifest, hookimpl

HERE = Path(__file__).parent
MANIFEST = Manifest(
    name="operational",
    version="0.2.0",
    summary="Interactions, pipeline, sales force automation, tickets, orders",
    category="operational",
    depends=(),
    core=">=0.1,<1",
)


@hookimpl
def manifest():
    """Describe the operational module."""
    return MANIFEST


@hookimpl
def hookspecs():
    """Publish ``order_placed``."""
    from plugins.operational import published_hooks

    return published_hooks


@hookimpl
def migrations():
    """The module's Alembic revisions."""
    return HERE / "migrations"


# Functions named after a submodule (models.py, permissions.py) would be replaced by it on
# import; these carry other names and say which hook they implement.
@hookimpl(specname="models")
def own_models():
    """The module's tables."""
    from plugins.operational.models import ALL_MODELS

    return list(ALL_MODELS)


@hookimpl(specname="permissions")
def own_permissions():
    """Permissions on products, orders, interactions, the pipeline, mailings, tickets, reports."""
    from plugins.operational.permissions import declarations

    return declarations()


@hookimpl
def post_install(crm, session):
    """The default pipeline, lost reasons and SLA policies."""
    from plugins.operational import defaults

    defaults.install(session)


@hookimpl
def api_routers(crm):
    """REST endpoints under ``/api/operational/``."""
    from plugins.operational.routes import routers

    return routers()


@hookimpl
def web_routers(crm):
    """Pages the module renders itself: public survey and unsubscribe pages, reports, agenda."""
    from plugins.operational.pages import routers

    return routers()


@hookimpl
def register_commands(cli):
    """``crm orders``, ``crm products``, ``crm mailings``, ``crm tickets``."""
    from plugins.operational.commands import register

    register(cli)


@hookimpl
def web_views(crm):
    """Products, orders, pipeline (kanban), activities, interactions, tickets."""
    from plugins.operational.views import resources

    return resources()


@hookimpl
def customer_slots(crm):
    """What we know, the timeline, deals and tickets on the customer 360 page."""
    from plugins.operational.views import slots

    return slots()


@hookimpl
def dashboard_widgets(crm):
    """Weighted pipeline, overdue activities, revenue by month."""
    from plugins.operational.views import widgets

    return widgets()


@hookimpl
def menu_items(crm):
    """Pipeline, activities, tickets, orders, products, interactions."""
    from plugins.operational.views import menu

    return menu()


@hookimpl
def checklist_items(crm):
    """SMTP, the reply token, products, stages, SLA, lost reasons, training, ownership."""
    from plugins.operational.checks import items

    return items()


@hookimpl
def demo_data(crm, seed):
    """Products, a year of orders, a pipeline, activities, interactions, tickets, surveys."""
    from plugins.operational.demo import load

    return load(crm, seed)


@hookimpl
def template_dirs():
    """Templates, found as ``operational/<name>``."""
    return [HERE / "templates"]


@hookimpl
def record_types(crm):
    """Opportunities, tickets and orders, for notes, followers, hand-offs and feeds."""
    from plugins.operational.collaboration import record_types as declared

    return declared()


@hookimpl(specname="webhook_events")
def declared_webhook_events(crm):
    """``order.placed``, ``ticket.opened``, ``ticket.resolved``, ``deal.won``, ``deal.lost``."""
    from plugins.operational.webhooks import events

    return events()


@hookimpl
def timeline_sources(crm):
    """Interactions, orders, tickets and won or lost deals on the unified timeline."""
    from plugins.operational.collaboration import timeline_sources as declared

    return declared()
