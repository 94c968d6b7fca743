"""Every hook of the CRM, with what it receives and what it returns.

Plugins implement these with ``from core import hookimpl``. Argument names are the same across
hooks: ``crm`` is the running :class:`core.runtime.Crm` (settings, database, hooks), ``session``
an open SQLAlchemy session inside the caller's transaction, ``cli`` the root click group.

Naming: ``register_*`` hooks receive something to add to; nouns (``models``, ``migrations``,
``checklist_items``) return the plugin's contribution; past-tense verbs (``customer_created``)
are events called after the transaction commits.

Hooks that describe one module (``manifest``, ``migrations``, ``models``, ``post_install``,
``pre_uninstall``) are called for that module alone. ``customer_merged`` runs inside the
merge transaction, and an error there aborts the merge. Collector and event hooks are called for
the core and every *enabled* module, one implementation at a time: one that raises is logged
with its plugin's name and the others still run.
"""

from __future__ import annotations

from core import hookspec

# --- What a module is -------------------------------------------------------------------------


@hookspec
def manifest():
    """Describe this module.

    Called once when the plugin is loaded, before any other hook. Return a
    :class:`core.Manifest` (or a dict with the same fields): name (equal to the entry point's
    name), version, summary, category, ``depends`` (other modules) and ``core`` (the core
    versions supported, a PEP 440 specifier). A plugin without a valid manifest is not loaded.
    """


@hookspec
def hookspecs():
    """Publish hook specifications of this module for the modules that depend on it.

    Called when the plugin is loaded. Return a module or class whose functions are marked with
    ``core.hookspec``; the core adds them to the hook bus, so dependents can ``@hookimpl`` them
    (for example ``operational`` publishes ``order_placed`` and ``smart_sales`` implements it).
    """


@hookspec
def migrations():
    """Where this module's Alembic migrations live.

    Called for this module when its schema is installed, upgraded, checked or removed. Return
    the path of a folder of Alembic revision files. The first revision has
    ``branch_labels = ("<module>",)`` and ``down_revision = None``; it may set ``depends_on`` to
    a revision of a module it depends on. Return ``None`` for a module without tables.
    """


@hookspec
def models():
    """The SQLAlchemy ORM classes (or ``Table`` objects) this module owns.

    Called for this module when its tables must be known: uninstall impact, purge checks. Import
    your models inside the implementation, never at plugin import time. Every table name must
    begin with ``<module>_``; a module never alters another module's tables.
    """


# --- Permissions ------------------------------------------------------------------------------


@hookspec
def roles():
    """Roles this module adds to the built-in ones.

    Called when modules are enabled and roles are synchronised. Return an iterable of
    :class:`core.permissions.Role`.
    """


@hookspec
def permissions():
    """Permissions this module defines, one per model and action.

    Called when modules are enabled and permissions are synchronised. Return an iterable of
    :class:`core.permissions.Permission`; each names the roles that get it by default.
    """


# --- Web --------------------------------------------------------------------------------------


@hookspec
def api_routers(crm):
    """FastAPI routers of this module.

    Called when the web app is built, for enabled modules. Return an iterable of
    ``fastapi.APIRouter``; the core mounts them under ``/api/<module>``. Protect every route with
    the core's dependencies (``core.web.deps.require_permission``) unless it says why not.
    """


@hookspec
def web_views(crm):
    """View specifications (list, form, kanban, detail) this module registers for the staff UI.

    Called when the web app is built, for enabled modules. Return an iterable of view specs.
    """


@hookspec
def extend_views(crm, views):
    """Change views owned by other modules (add a column, field, filter, tab or action).

    Called after every module's ``web_views``; ``views`` maps view ids to specs. Return nothing.
    """


@hookspec
def web_routers(crm):
    """FastAPI routers of HTML pages this module renders itself (reports, an agenda, public
    survey or unsubscribe pages), mounted under ``/<module>/``.

    Called when the web app is built, for enabled modules. Return an iterable of routers. Use
    ``core.web.ui.context`` (``ui_principal`` for signed-in pages, ``csrf_check`` on the router,
    ``page`` to render with the layout); a page without a login says why in its docstring.
    """


@hookspec
def customer_slots(crm):
    """Panels this module adds to the customer 360 page (timeline, pipeline, alerts...).

    Called when the web app is built, for enabled modules. Return an iterable of
    :class:`core.ui.Slot`. Each slot is loaded by its own request, so one that is slow or
    raises shows an error box and leaves the rest of the page intact.
    """


@hookspec
def dashboard_widgets(crm):
    """Numbers and charts this module adds to the home dashboard.

    Called when the web app is built, for enabled modules. Return an iterable of
    :class:`core.ui.Widget`; each is loaded by its own request, like customer slots.
    """


@hookspec
def record_rules(crm, user, model):
    """Extra conditions under which ``user`` may see rows of ``model`` (``"customer"``...).

    Called for users whose scope is ``own`` or ``team`` (see :mod:`core.records`) whenever a
    list, search, count, kanban or export of ``model`` is built. Return an iterable of
    SQLAlchemy boolean expressions; they are OR-ed with the core's owner rule, so they can only
    widen what the user sees.
    """


@hookspec
def record_types(crm):
    """Kinds of records this module owns that others may refer to by type and id.

    Called whenever modules look records up by type (notes and followers on any record,
    hand-offs between teams, feeds). Return an iterable of :class:`core.records.RecordType`;
    the core declares ``customer``. A type with a ``team_column`` can be handed to a team.
    """


@hookspec
def timeline_sources(crm):
    """What this module adds to the unified timeline of a customer (orders, tickets, notes).

    Called when a customer's timeline or a feed is built, for enabled modules. Return an
    iterable of :class:`core.timeline.TimelineSource`; each ``fetch`` returns the newest
    entries for the query's customers, applying this module's own record rules.
    """


@hookspec
def webhook_events(crm):
    """Event types this module sends to outbound webhooks.

    Called when admins register webhook endpoints and when an event is published, for the core
    and enabled modules. Return an iterable of :class:`core.webhooks.WebhookEvent` (a dotted
    ``name`` such as ``order.placed``, a label and a description of the payload); publish one
    with ``core.webhooks.publish(session, crm, name, data)`` inside the transaction that made it
    happen. A name another module already declares is refused and logged.
    """


@hookspec
def locale_dirs():
    """Folders holding this module's translations (``<lang>/LC_MESSAGES/messages.po``).

    Called when the web app is built, for enabled modules. Return an iterable of paths; their
    catalogs are merged over the core's, so a module translates its own labels.
    """


@hookspec
def menu_items(crm):
    """Entries this module adds to the staff UI's navigation.

    Called when the web app is built, for enabled modules. Return an iterable of menu entries.
    """


@hookspec
def template_dirs():
    """Folders of Jinja2 templates this module ships.

    Called when the web app is built, for enabled modules. Return an iterable of paths; they are
    searched after the core's own templates, namespaced by module name.
    """


@hookspec
def static_dirs():
    """Folders of static files (CSS, JavaScript, images) this module ships.

    Called when the web app is built, for enabled modules. Return an iterable of paths; they are
    served under ``/static/<module>/``.
    """


@hookspec
def web_assets():
    """Stylesheets and scripts every page of the staff UI loads, for panels this module adds to
    other modules' pages (slots arrive by htmx, which does not run their scripts).

    Called when the web app is built, for enabled modules. Return URLs under
    ``/static/<module>/`` (see ``static_dirs``), ending in ``.css`` or ``.js``.
    """


# --- Command line -----------------------------------------------------------------------------


@hookspec
def register_commands(cli):
    """Add click commands or groups to the ``crm`` command.

    Called when ``crm`` starts, for enabled modules only. ``cli`` is the root click group: call
    ``cli.add_command`` or decorate with ``@cli.command()``. Keep heavy imports inside the
    commands so that ``crm --help`` stays fast.
    """


@hookspec
def module_settings():
    """Settings this module reads, as :class:`core.settings.ModuleSetting` items.

    Admins set them in the ``[module]`` table of ``crm.toml`` or as ``CRM_<MODULE>_<NAME>``;
    read them with ``crm.module_settings("module")``, which validates them and fills in the
    defaults. ``crm settings`` lists them with their effective values.
    """


# --- Pre-deployment checklist -----------------------------------------------------------------


@hookspec
def checklist_items(crm):
    """Items of the pre-deployment checklist this module contributes.

    Called by ``crm check`` (and the admin UI), for the core and enabled modules. Return an
    iterable of :class:`core.checks.CheckItem`: automatic checks carry a ``check`` function;
    items without one are attestations that a person confirms with ``crm check --ack``.
    """


# --- Demo data -------------------------------------------------------------------------------


@hookspec
def demo_data(crm, seed):
    """Load this module's demo data, after the core's demo customers and staff exist.

    Called by ``crm demo`` for enabled modules. Use ``seed`` so the same seed gives the same
    data, and make loading twice harmless. Return a short text saying what was loaded.
    """


# --- Lifecycle --------------------------------------------------------------------------------


@hookspec
def post_install(crm, session):
    """Set up a module after its migrations ran (default records, settings).

    Called for this module alone when it is enabled for the first time, inside the enabling
    transaction: raising rolls the whole enable back. Return nothing.
    """


@hookspec
def pre_uninstall(crm, session):
    """Clean up before this module's tables are dropped by ``crm modules uninstall --purge``.

    Called for this module alone, inside the uninstall transaction. Never touch other modules'
    tables. Return nothing.
    """


# --- Events (after commit) --------------------------------------------------------------------


@hookspec
def user_created(crm, user):
    """A user was created; called after the transaction committed. Return nothing."""


@hookspec
def customer_created(crm, customer):
    """A customer was created; called after the transaction committed. Return nothing."""


@hookspec
def customer_updated(crm, customer, changes, actor_id):
    """A customer was updated; ``changes`` maps field to ``(before, after)``; ``actor_id`` is
    the user who changed it (``None`` for a command or a system process).

    Called after the transaction committed. Return nothing.
    """


@hookspec
def customer_deleted(crm, customer):
    """A customer was deleted; ``customer`` is a dict of its last values.

    Called after the transaction committed. Return nothing.
    """


@hookspec
def customer_merged(crm, session, survivor, merged):
    """Customer ``merged`` is being merged into ``survivor`` (both ORM objects).

    Called *inside* the merge transaction, before the core moves every row whose foreign key
    points to ``merged`` over to ``survivor`` and deletes ``merged``: merge or move what a plain
    re-pointing would get wrong (rows that would break a unique constraint, totals to add up).
    Raising aborts the whole merge. Unlike the other events this one runs before commit,
    because moving the records must be part of the merge; use ``core.events.emit`` to act
    after commit. Return nothing.
    """


@hookspec
def record_event(crm, event):
    """Something happened to a record that people may want to hear about.

    ``event`` is a :class:`core.events.RecordEvent` (a ticket opened, a deal won, an alert
    raised) that a module announced with :func:`core.events.announce`; called after the
    transaction committed. The collaborative module turns it into notifications. Return nothing.
    """


@hookspec
def module_enabled(crm, name):
    """Module ``name`` was enabled; called after the transaction committed. Return nothing."""


@hookspec
def module_disabled(crm, name):
    """Module ``name`` was disabled; called after the transaction committed. Return nothing."""
