"""Collaborative CRM: departments share what each knows about a customer.

Departments (the core's teams, with a kind, a lead and members with a role), customers' account
teams and the record rules that follow them; notes and threaded comments with @mentions on any
record type a module declares; followers; an inbox with e-mail at once or as a daily digest;
hand-offs between teams with a deadline and escalation; an activity feed across every enabled
module; the partner network (suppliers, distributors, resellers...) and customers shared with
partner contacts. Depends on the core only: other modules reach it through the core's hooks
(``record_types``, ``record_event``, ``timeline_sources``).
"""

from pathlib import Path

from core import Manifest, hookimpl

HERE = Path(__file__).parent
MANIFEST = Manifest(
    name="collaborative",
    version="0.2.0",
    summary="Teams, shared notes, mentions, notifications, hand-offs, partners",
    category="collaborative",
    depends=(),
    core=">=0.1,<1",
)


@hookimpl
def manifest():
    """Describe the collaborative module."""
    return MANIFEST


@hookimpl
def migrations():
    """The module's Alembic revisions."""
    return HERE / "migrations"


# Functions named after a submodule (models.py, permissions.py) would be replaced by it on
# import; these carry other names and say which hook they implement.
@hookimpl(specname="models")
def own_models():
    """The module's tables."""
    from plugins.collaborative.models import ALL_MODELS

    return list(ALL_MODELS)


@hookimpl(specname="roles")
def own_roles():
    """The partner contact role (scope ``shared``)."""
    from plugins.collaborative.permissions import PARTNER

    return [PARTNER]


@hookimpl(specname="permissions")
def own_permissions():
    """Permissions on messages, the inbox, teams, hand-offs, partners and shares."""
    from plugins.collaborative.permissions import declarations

    return declarations()


@hookimpl
def module_settings():
    """Kinds of department, hand-off deadline, digest hour, background sending."""
    from plugins.collaborative.config import DECLARATIONS

    return list(DECLARATIONS)


@hookimpl(specname="record_rules")
def own_record_rules(crm, user, model):
    """Customers of my teams, customers handed to my teams, customers shared with me."""
    from plugins.collaborative.rules import conditions

    return conditions(crm, user, model)


@hookimpl(specname="record_types")
def own_record_types(crm):
    """Partners, so that they can be discussed and followed like any record."""
    from plugins.collaborative.partners import record_types

    return record_types()


@hookimpl(specname="timeline_sources")
def own_timeline_sources(crm):
    """Notes and comments, hand-offs."""
    from plugins.collaborative.timeline import sources

    return sources()


@hookimpl
def record_event(crm, event):
    """Tell the record's (and its customer's) followers what happened."""
    from plugins.collaborative.events import on_record_event

    on_record_event(crm, event)


@hookimpl
def customer_created(crm, customer):
    """Give a new customer its owner's team as account team."""
    from plugins.collaborative.departments import on_customer_created

    on_customer_created(crm, customer)


@hookimpl
def customer_updated(crm, customer, changes, actor_id):
    """Tell the customer's followers what changed (not the one who changed it)."""
    from plugins.collaborative.events import on_customer_updated

    on_customer_updated(crm, customer, changes, actor_id)


@hookimpl
def customer_merged(crm, session, survivor, merged):
    """Move notes, followers, hand-offs, partner links and shares to the survivor."""
    from plugins.collaborative.merge import merge_customer

    merge_customer(session, survivor, merged)


@hookimpl
def api_routers(crm):
    """REST endpoints under ``/api/collaborative/``."""
    from plugins.collaborative.routes import routers

    return routers()


@hookimpl
def web_routers(crm):
    """Pages: inbox, preferences, feed, hand-offs, the conversation panel's forms."""
    from plugins.collaborative.pages import routers

    return routers()


@hookimpl
def web_views(crm):
    """Partners, departments, hand-offs."""
    from plugins.collaborative.views import resources

    return resources()


@hookimpl
def customer_slots(crm):
    """Notes and comments on every record page; the cross-department timeline on the 360."""
    from plugins.collaborative.views import slots

    return slots(crm)


@hookimpl
def menu_items(crm):
    """Inbox (with its unread count), feed, hand-offs, departments, partners."""
    from plugins.collaborative.views import menu

    return menu()


@hookimpl
def template_dirs():
    """Templates, found as ``collaborative/<name>``."""
    return [HERE / "templates"]


@hookimpl
def static_dirs():
    """Styles and scripts (see ``web_assets``)."""
    return [HERE / "static"]


@hookimpl
def web_assets():
    """Styles, the mention autocomplete and the inbox's live updates, on every page."""
    return [
        "/static/collaborative/collaborative.css",
        "/static/collaborative/chatter.js",
        "/static/collaborative/inbox.js",
    ]


@hookimpl
def checklist_items(crm):
    """Teams and leads, sharing agreement, notification e-mail, digests, account teams."""
    from plugins.collaborative.checks import items

    return items()


@hookimpl
def register_commands(cli):
    """``crm collaborative``: deliver, digest, escalate, teams, partners."""
    from plugins.collaborative.commands import register

    register(cli)


@hookimpl
def demo_data(crm, seed):
    """Departments with leads, account teams, notes with mentions, a hand-off, partners."""
    from plugins.collaborative.demo import load

    return load(crm, seed)
