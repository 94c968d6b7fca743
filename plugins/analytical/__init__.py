"""Analytical CRM: customer value and behaviour, forecasts and targeted campaigns.

It reads the operational module's orders (``depends: operational``). Heavy computations run in
SQL where the database can do them and are stored as snapshots with their as-of date. So far:
RFM segments, the four customer classes, lifetime value, profitability and value tiers,
cohorts and churn risk, forecasts, saved segments and campaigns with control groups, KPIs.
``crm analytics refresh`` recomputes every snapshot; pages live under ``/analytical/``.
"""

from pathlib import Path

from core import Manifest, hookimpl

MANIFEST = Manifest(
    name="analytical",
    version="0.1.0",
    summary="RFM, lifetime value, profitability, cohorts, forecasts, campaigns",
    category="analytical",
    depends=("operational",),
    core=">=0.1,<1",
)


@hookimpl
def manifest():
    """Describe the analytical module."""
    return MANIFEST


@hookimpl
def migrations():
    """The module's Alembic revisions."""
    return Path(__file__).parent / "migrations"


# Named so the models.py submodule cannot replace it (see docs/plugins.md).
@hookimpl(specname="models")
def own_models():
    """Snapshot tables."""
    from plugins.analytical.models import ALL_MODELS

    return list(ALL_MODELS)


@hookimpl(specname="permissions")
def own_permissions():
    """Who may see analytics and build segments and campaigns."""
    from plugins.analytical.permissions import declarations

    return declarations()


@hookimpl(specname="module_settings")
def own_settings():
    """Cost-to-serve rates, class rules, tiers, churn thresholds, campaign defaults."""
    from plugins.analytical.config import DECLARATIONS

    return list(DECLARATIONS)


@hookimpl
def web_routers(crm):
    """The analytics pages under ``/analytical/``."""
    from plugins.analytical.pages import routers

    return routers()


@hookimpl
def api_routers(crm):
    """REST endpoints under ``/api/analytical/``: segments and campaigns."""
    from plugins.analytical import campaigns_api

    return [campaigns_api.router]


@hookimpl(optionalhook=True)
def mailing_segment(crm, session, name):
    """Audiences ``campaign:<id>`` (a frozen campaign's targets, never its control group) and
    ``segment:<name>`` (a saved segment now) for operational mailings; ``None`` otherwise."""
    from plugins.analytical.campaigns import mailing_segment as resolve

    return resolve(crm, session, name)


@hookimpl
def static_dirs():
    """The analytics pages' stylesheet."""
    return [Path(__file__).parent / "static"]


@hookimpl
def menu_items(crm):
    """Analytics in the main menu."""
    from core.i18n import N_
    from core.ui import MenuItem

    return [MenuItem(N_("Analytics"), "/analytical/", "analytical.insight:read", order=60)]


@hookimpl
def register_commands(cli):
    """``crm analytics``."""
    from plugins.analytical.commands import commands

    for command in commands():
        cli.add_command(command)


@hookimpl
def customer_slots(crm):
    """The customer's latest snapshots: RFM segment, class, value, churn risk."""
    from plugins.analytical.views import slots

    return slots()


@hookimpl
def template_dirs():
    """Templates, found as ``analytical/<name>``."""
    return [Path(__file__).parent / "templates"]


@hookimpl
def record_types(crm):
    """Campaigns, so that they can be discussed and followed."""
    from plugins.analytical.collaboration import record_types as declared

    return declared()


@hookimpl
def dashboard_widgets(crm):
    """Revenue and new customers this month, retention, revenue per month, classes."""
    from plugins.analytical.widgets import widgets

    return widgets()


@hookimpl
def checklist_items(crm):
    """CLV history, product costs, one currency, segment reviews, fresh snapshots, settings."""
    from plugins.analytical.checks import items

    return items()


@hookimpl
def extend_views(crm, views):
    """The customer list's "Class" and "Value tier" filters (latest snapshots)."""
    from plugins.analytical.value_pages import extend_customer_list

    extend_customer_list(views)


@hookimpl
def customer_merged(crm, session, survivor, merged):
    """Drop the merged customer's snapshot rows (the next refresh scores the survivor with both
    histories) and its campaign memberships where the survivor is already a member."""
    from sqlalchemy import delete, select

    from plugins.analytical.models import ALL_MODELS, CampaignMember

    for model in ALL_MODELS:
        if hasattr(model, "run_id"):
            session.execute(delete(model).where(model.customer_id == merged.id))
    shared = select(CampaignMember.campaign_id).where(CampaignMember.customer_id == survivor.id)
    session.execute(
        delete(CampaignMember).where(
            CampaignMember.customer_id == merged.id, CampaignMember.campaign_id.in_(shared)
        )
    )
