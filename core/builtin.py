"""The core's own hook implementations: built-in roles, permissions and checklist items.

Registered under the name ``core`` before any plugin, with the same hooks a plugin uses.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from core import hookimpl

if TYPE_CHECKING:
    from core.runtime import Crm


@hookimpl
def manifest():
    """The core describes itself like any module."""
    from core import Manifest, __version__

    return Manifest(
        name="core", version=__version__, summary="Customers and the hook bus", category="other"
    )


@hookimpl
def roles():
    """The built-in roles."""
    from core.permissions import Role

    return [
        Role("admin", "Administrator", "Everything, including modules, users and settings."),
        Role("manager", "Manager", "Leads a team; sees the team's work and reports.", "team"),
        Role("sales", "Salesperson", "Works with customers, deals and orders.", "team"),
        Role("service", "Service agent", "Handles tickets and after-sale care."),
        Role("marketing", "Marketer", "Builds segments and campaigns."),
        Role("analyst", "Analyst", "Reads data and analytics; changes nothing."),
    ]


@hookimpl
def permissions():
    """Permissions on the core's own models."""
    from core.permissions import Permission

    return [
        Permission("user", "read", "See users", ("manager",)),
        Permission("user", "create", "Create users"),
        Permission("user", "update", "Change users and their roles"),
        Permission("user", "delete", "Deactivate users"),
        Permission("module", "read", "See modules and their states", ("manager",)),
        Permission("module", "manage", "Enable, disable, upgrade and uninstall modules"),
        Permission("audit", "read", "Read the audit log", ("manager",)),
        Permission("checklist", "read", "See the pre-deployment checklist", ("manager",)),
        Permission("checklist", "attest", "Attest checklist items", ("manager",)),
        Permission(
            "customer",
            "read",
            "See customers",
            ("manager", "sales", "service", "marketing", "analyst"),
        ),
        Permission("customer", "create", "Create customers", ("manager", "sales", "service")),
        Permission(
            "customer",
            "update",
            "Change customers and their identities",
            ("manager", "sales", "service"),
        ),
        Permission("customer", "archive", "Archive and restore customers", ("manager", "sales")),
        Permission("customer", "assign", "Give customers to other owners", ("manager",)),
        Permission("customer", "merge", "Merge duplicate customers", ("manager",)),
        Permission("customer", "import", "Import customers from CSV", ("manager",)),
        Permission("customer", "export", "Export customers", ("manager", "marketing", "analyst")),
        Permission("customer", "delete", "Delete customers for good"),
        Permission("webhook", "manage", "Register webhook endpoints and see their deliveries"),
    ]


def _schema_current(crm: Crm) -> str | None:
    from core.migrate import check_current

    problems = check_current(crm, crm.enabled_modules())
    return "; ".join(problems) + " (run `crm db upgrade`)" if problems else None


def _secret_key(crm: Crm) -> str | None:
    if crm.settings.secret_key_is_default:
        return "CRM_SECRET_KEY is the built-in default"
    return None


def _admin_password(crm: Crm) -> str | None:
    from sqlalchemy import select

    from core.models import User, UserRole

    with crm.db.session() as session:
        emails = session.scalars(
            select(User.email)
            .join(UserRole)
            .where(UserRole.role == "admin", User.initial_password.is_(True), User.is_active)
        ).all()
    return f"still using the password from `crm init`: {', '.join(emails)}" if emails else None


def _sqlite_wal(crm: Crm) -> str | None:
    if crm.db.dialect != "sqlite":
        return None
    with crm.db.engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    return None if str(mode).lower() == "wal" else f"journal_mode is {mode}"


def _recent_backup(crm: Crm) -> str | None:
    from core.backup import last_backup_at
    from core.db import utcnow

    when = last_backup_at(crm)
    if when is None:
        return "no backup has been made with `crm db backup`"
    age = utcnow() - when
    if age > dt.timedelta(hours=crm.settings.backup_max_age_hours):
        hours = int(age.total_seconds() // 3600)
        return f"the last backup is {hours} hours old"
    return None


def _deprecated_hooks(crm: Crm) -> str | None:
    from core.plugin_report import deprecated_use

    found = deprecated_use(crm)
    return "; ".join(found) if found else None


def _failed_webhooks(crm: Crm) -> str | None:
    from sqlalchemy import and_, exists, func, select
    from sqlalchemy.orm import aliased

    from core.webhooks.models import DELIVERED, FAILED, WebhookDelivery

    redelivered = aliased(WebhookDelivery)
    lost = select(func.count()).where(
        WebhookDelivery.status == FAILED,
        ~exists().where(
            and_(
                redelivered.event_id == WebhookDelivery.event_id,
                redelivered.endpoint_id == WebhookDelivery.endpoint_id,
                redelivered.status == DELIVERED,
            )
        ),
    )
    with crm.db.session() as session:
        failed = session.scalar(lost)
    return f"{failed} webhook deliveries gave up and were not redelivered" if failed else None


def _undeclared_routes(crm: Crm) -> str | None:
    from core.web.access import undeclared
    from core.web.app import create_app

    missing = undeclared(create_app(crm, check_schema=False))
    if not missing:
        return None
    shown = ", ".join(f"{e.method} {e.path}" for e in missing[:10])
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    return f"{len(missing)} routes declare no access rule: {shown}{more}"


def _non_admin_user(crm: Crm) -> str | None:
    from sqlalchemy import select

    from core.models import User, UserRole

    with crm.db.session() as session:
        admins = select(UserRole.user_id).where(UserRole.role == "admin")
        found = session.scalar(
            select(User.id).where(User.is_active, User.id.not_in(admins)).limit(1)
        )
    return None if found else "only administrators can sign in"


@hookimpl
def checklist_items(crm):
    """The core's checklist: technical safety plus the people and process items of a rollout."""
    from core.checks import CheckItem

    return [
        CheckItem(
            "core.E001",
            "critical",
            "technical",
            "The secret key is not the default",
            "set CRM_SECRET_KEY (or secret_key in crm.toml) to 32+ random characters;"
            " `crm init` writes one",
            _secret_key,
            deploy=True,
        ),
        CheckItem(
            "core.E002",
            "error",
            "technical",
            "The administrator password was changed since `crm init`",
            "run `crm users set-password EMAIL`",
            _admin_password,
            deploy=True,
        ),
        CheckItem(
            "core.E003",
            "critical",
            "technical",
            "The database schema matches the code",
            "run `crm db upgrade`",
            _schema_current,
        ),
        CheckItem(
            "core.W004",
            "warning",
            "technical",
            "SQLite runs in WAL mode",
            "the core enables WAL on connect; check that the file system supports it",
            _sqlite_wal,
        ),
        CheckItem(
            "core.W005",
            "warning",
            "technical",
            "A backup was made recently",
            "run `crm db backup FILE` on a schedule (see CRM_BACKUP_MAX_AGE_HOURS)",
            _recent_backup,
            deploy=True,
        ),
        CheckItem(
            "core.W006",
            "warning",
            "people",
            "At least one user who is not an administrator exists",
            "add staff with `crm users add`",
            _non_admin_user,
            deploy=True,
        ),
        CheckItem(
            "core.W010",
            "warning",
            "people",
            "A project owner and an executive sponsor"
            " are named and have agreed to the goals of the CRM",
            "attest with `crm check --ack core.W010 --by EMAIL --note 'who'`",
            deploy=True,
        ),
        CheckItem(
            "core.W011",
            "warning",
            "people",
            "Every user has been trained on the features they will use, with time set aside for it",
            "plan sessions per role before go-live, then attest",
            deploy=True,
        ),
        CheckItem(
            "core.W012",
            "warning",
            "process",
            "A rollout plan with dates, success"
            " measures (KPIs) and a person responsible for each step is agreed",
            "write the plan, then attest",
            deploy=True,
        ),
        CheckItem(
            "core.W013",
            "warning",
            "data",
            "The sources of customer data, their owners"
            " and the rules for duplicates and data quality are agreed",
            "list every source (shop, phone, Zalo, Facebook, e-mail) and attest",
            deploy=True,
        ),
        CheckItem(
            "core.I014",
            "info",
            "process",
            "The sales and service processes the CRM"
            " supports were reviewed, not only copied from the old tools",
            "review with the teams, then attest",
            deploy=True,
        ),
        CheckItem(
            "core.W015",
            "warning",
            "technical",
            "Enabled modules use no deprecated hook",
            "install the plugins' releases made for this plugin API (`crm plugins list` shows"
            " which hook each still uses)",
            _deprecated_hooks,
        ),
        CheckItem(
            "core.W016",
            "warning",
            "technical",
            "No webhook delivery has given up",
            "see Admin > Webhooks, fix the receiver, then redeliver",
            _failed_webhooks,
        ),
        CheckItem(
            "core.W017",
            "warning",
            "technical",
            "Every route of the enabled modules declares who may call it",
            "ask the module's authors for a release whose routes declare their access"
            " (`openapi_extra=access(...)`, docs/plugins.md)",
            _undeclared_routes,
        ),
    ]


@hookimpl
def record_types(crm):
    """Customers, which every module may refer to."""
    from core.customers.models import Customer
    from core.i18n import N_
    from core.records import RecordType

    return [
        RecordType(
            "customer",
            N_("Customer"),
            Customer,
            "/ui/customer/{id}",
            title="display_name",
            owner_column="owner_id",
            customer_column="id",
            resource="customer",
        )
    ]


@hookimpl
def web_views(crm):
    """The customer screens and the user resource (for owner names)."""
    from core.customers import views

    return views.resources()


@hookimpl
def customer_slots(crm):
    """Identities, people at a company, possible duplicates."""
    from core.customers import views

    return views.slots()


@hookimpl
def dashboard_widgets(crm):
    """Customer counts."""
    from core.customers import views

    return views.widgets()


@hookimpl
def menu_items(crm):
    """Customers and the admin area."""
    from core.customers import views
    from core.i18n import N_
    from core.ui import MenuItem

    return [*views.menu(), MenuItem(N_("Webhooks"), "/admin/webhooks", "webhook:manage", order=925)]


@hookimpl
def webhook_events(crm):
    """The customer events (``ping``, the test event, is built into ``core.webhooks``)."""
    from core.customers import webhooks

    return webhooks.events()
