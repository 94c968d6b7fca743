"""Words that templates translate with ``_(variable)`` but no Python code marks with ``N_``.

Nothing imports this module: it exists so that ``make messages`` extracts these msgids into the
catalogs. Keep each group in step with where its values come from.
"""

from core.i18n import N_

TERMS = (
    # Built-in role labels (core/builtin.py), shown on the users page as _(role.label).
    N_("Administrator"),
    N_("Manager"),
    N_("Salesperson"),
    N_("Service agent"),
    N_("Marketer"),
    N_("Analyst"),
    # Module states (core/models.py), shown on the modules page as _(m.state).
    N_("installed"),
    N_("disabled"),
    N_("uninstalled"),
    N_("to_install"),
    N_("to_upgrade"),
    N_("to_remove"),
    N_("to_disable"),
    # Checklist statuses (core/checks.py, core/web/ui/admin.py), shown as _(r.status).
    N_("ok"),
    N_("open"),
    N_("attested"),
    N_("silenced"),
    N_("fail"),
    N_("error"),
    # Literals inside templates passed through _(variable), which extraction cannot see:
    # admin/audit.html filter labels, account.html password labels, list.html search label.
    N_("Model"),
    N_("Action"),
    N_("Who"),
    N_("Current password"),
    N_("New password"),
    N_("New password again"),
    N_("Search"),
)
