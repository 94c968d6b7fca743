"""``crm settings``: the effective settings of the core and of the enabled modules."""

from __future__ import annotations

import dataclasses

import click

from core.commands import FORMAT_OPTION, get_crm, print_json, print_table

HIDDEN = {"secret_key", "module_sources"}


@click.command("settings")
@click.option("--module", default=None, help="Only this module's settings ('core' for the core).")
@FORMAT_OPTION
def settings(module: str | None, fmt: str) -> None:
    """Show every setting, its value and where to set it (secrets hidden).

    A module's settings live in the ``[module]`` table of ``crm.toml`` or in
    ``CRM_<MODULE>_<NAME>``; an invalid value stops here with its name.
    """
    from sqlalchemy.engine import make_url

    crm = get_crm()
    rows: list[dict[str, object]] = []
    if module in (None, "core"):
        for item in dataclasses.fields(crm.settings):
            if item.name in HIDDEN or item.name == "config_file":
                continue
            value = getattr(crm.settings, item.name)
            if item.name == "database_url":
                value = make_url(value).render_as_string(hide_password=True)
            if item.name == "smtp_url" and value:
                value = make_url(value).render_as_string(hide_password=True)
            rows.append(
                {
                    "module": "core",
                    "name": item.name,
                    "variable": f"CRM_{item.name.upper()}",
                    "value": value,
                    "help": "",
                }
            )
    modules = crm.enabled_modules() if module in (None, "core") else [module]
    if module not in (None, "core") and module not in crm.registry.names():
        raise click.BadParameter(f"no module {module!r}", param_hint="--module")
    for name in modules if module != "core" else []:
        values = crm.module_settings(name)
        for item in crm.declared_settings(name):
            rows.append(
                {
                    "module": name,
                    "name": item.name,
                    "variable": f"CRM_{name.upper()}_{item.name.upper()}",
                    "value": values[item.name],
                    "help": item.help,
                }
            )
    if fmt == "json":
        print_json(rows)
        return
    print_table(
        ["module", "name", "value", "variable", "meaning"],
        [[r["module"], r["name"], r["value"], r["variable"], r["help"]] for r in rows],
    )
