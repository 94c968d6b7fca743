"""Smart selling: alerts for salespeople mined from their own order history.

Association rules mined from order baskets (``mining``, ``runs``) become cross-sell alerts;
products with an upgrade or a higher tier in their category become up-sell alerts; valuable
customers slipping away (the analytical module's P(alive) and purchase rhythm) become churn
alerts. Each alert goes to the customer's owner with its reason in plain words and its expected
value; the customer page shows the next best offers; an order with the suggested product
converts the alert and credits it. Performance pages measure the alerts and the salespeople.
Depends on operational (orders, products) and analytical (value tiers, P(alive)).
"""

from pathlib import Path

from core import Manifest, hookimpl

HERE = Path(__file__).parent
MANIFEST = Manifest(
    name="smart_sales",
    version="0.2.0",
    summary="Cross-sell, up-sell and churn alerts, next best offer, performance",
    category="sales",
    depends=("operational", "analytical"),
    core=">=0.1,<1",
)


@hookimpl
def manifest():
    """Describe the smart_sales module."""
    return MANIFEST


@hookimpl
def migrations():
    """The module's Alembic revisions."""
    return HERE / "migrations"


# Functions named after a submodule (models.py, permissions.py) would be replaced by it on
# import; these carry other names and say which hook they implement.
@hookimpl(specname="models")
def own_models():
    """Mining runs, rules, muted rules, alerts."""
    from plugins.smart_sales.models import ALL_MODELS

    return list(ALL_MODELS)


@hookimpl(specname="permissions")
def own_permissions():
    """Permissions on alerts, rules and performance."""
    from plugins.smart_sales.permissions import declarations

    return declarations()


@hookimpl
def module_settings():
    """Mining thresholds, alert lifetime, conversion window, churn thresholds."""
    from plugins.smart_sales.config import DECLARATIONS

    return list(DECLARATIONS)


@hookimpl(specname="record_types")
def own_record_types(crm):
    """Alerts, so that they can be discussed, followed and notified."""
    from plugins.smart_sales.collaboration import record_types

    return record_types()


@hookimpl(specname="timeline_sources")
def own_timeline_sources(crm):
    """Alerts raised and converted, on the customer's history."""
    from plugins.smart_sales.collaboration import timeline_sources

    return timeline_sources()


@hookimpl(optionalhook=True)
def order_placed(crm, order):
    """Credit the alerts the order converts, then raise the customer's new alerts."""
    from plugins.smart_sales.events import on_order_placed

    on_order_placed(crm, order)


@hookimpl
def customer_updated(crm, customer, changes, actor_id):
    """A customer's new owner takes over their open alerts."""
    from plugins.smart_sales.events import on_customer_updated

    on_customer_updated(crm, customer, changes, actor_id)


@hookimpl
def customer_merged(crm, session, survivor, merged):
    """Move the merged customer's alerts to the survivor, closing duplicates."""
    from plugins.smart_sales.alerts import merge_customer

    merge_customer(session, survivor, merged)


@hookimpl(specname="webhook_events")
def declared_webhook_events(crm):
    """``alert.raised`` and ``alert.converted``."""
    from plugins.smart_sales.webhooks import events

    return events()


@hookimpl
def api_routers(crm):
    """REST endpoints under ``/api/smart_sales/``."""
    from plugins.smart_sales.routes import routers

    return routers()


@hookimpl
def web_routers(crm):
    """Pages: the alert inbox, rules, alert and sales performance."""
    from plugins.smart_sales.pages import routers

    return routers()


@hookimpl
def web_views(crm):
    """Alerts, rules and mining runs in the UI generator."""
    from plugins.smart_sales.views import resources

    return resources()


@hookimpl
def menu_items(crm):
    """Alerts (with the open count) and sales performance in the main menu."""
    from plugins.smart_sales.views import menu

    return menu()


@hookimpl
def customer_slots(crm):
    """The customer's next best offers and open alerts."""
    from plugins.smart_sales.views import slots

    return slots()


@hookimpl
def dashboard_widgets(crm):
    """My open alerts, revenue credited to alerts this month."""
    from plugins.smart_sales.views import widgets

    return widgets()


@hookimpl
def template_dirs():
    """Templates, found as ``smart_sales/<name>``."""
    return [HERE / "templates"]


@hookimpl
def static_dirs():
    """The smart-selling pages' stylesheet."""
    return [HERE / "static"]


@hookimpl
def web_assets():
    """The stylesheet of the inbox and of the customer page's offers panel (slots arrive by
    htmx, so their styles must already be on the page)."""
    return ["/static/smart_sales/smart_sales.css"]


@hookimpl
def register_commands(cli):
    """``crm smart-sales``."""
    from plugins.smart_sales.commands import register

    register(cli)


@hookimpl
def checklist_items(crm):
    """Enough baskets, product costs, owners, a mining schedule, rule review, training."""
    from plugins.smart_sales.checks import items

    return items()


@hookimpl
def demo_data(crm, seed):
    """Products with upgrades bought together, a mining run, alerts in every state."""
    from plugins.smart_sales.demo import load

    return load(crm, seed)
