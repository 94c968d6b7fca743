"""``crm modules``: list, enable, disable, upgrade and uninstall modules."""

from __future__ import annotations

import click

from core.commands import FORMAT_OPTION, open_crm, print_json, print_table


@click.group()
def modules() -> None:
    """Enable, disable, upgrade and uninstall modules."""


@modules.command("list")
@FORMAT_OPTION
def list_(fmt: str) -> None:
    """Every installed plugin with its version, state, dependencies and load errors."""
    from core import modules as lifecycle

    found = lifecycle.list_modules(open_crm())
    if fmt == "json":
        print_json([m.as_dict() for m in found])
        return
    print_table(
        ["name", "version", "state", "depends", "summary", "errors"],
        [
            [m.name, m.version, m.state, ", ".join(m.depends), m.summary, "; ".join(m.errors)]
            for m in found
        ],
    )


@modules.command()
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Enable every module that can be enabled.")
def enable(names: tuple[str, ...], all_: bool) -> None:
    """Enable modules, their dependencies first; all or nothing."""
    from core import modules as lifecycle

    crm = open_crm()
    if all_:
        names = tuple(i.name for i in crm.registry.plugins.values() if i.loaded and not i.problems)
    if not names:
        raise click.UsageError("name at least one module, or pass --all")
    done = lifecycle.enable(crm, names)
    click.echo(f"Enabled: {', '.join(done)}" if done else "Nothing to do: already enabled")


@modules.command()
@click.argument("name")
@click.option(
    "--with-dependents", is_flag=True, help="Also disable the enabled modules that depend on NAME."
)
def disable(name: str, with_dependents: bool) -> None:
    """Disable a module; its data is kept and comes back when it is enabled again."""
    from core import modules as lifecycle

    done = lifecycle.disable(open_crm(), name, with_dependents)
    click.echo(f"Disabled: {', '.join(done)}" if done else f"Nothing to do: {name} not enabled")


@modules.command()
@click.argument("name")
@click.option("--purge", is_flag=True, help="Confirm that the module's tables and data go.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@FORMAT_OPTION
def uninstall(name: str, purge: bool, yes: bool, fmt: str) -> None:
    """Remove a module, its dependents and their data, after a backup."""
    from core import modules as lifecycle

    crm = open_crm()
    impact = lifecycle.uninstall_impact(crm, name)
    if fmt == "json" and not (purge and yes):
        print_json(impact.as_dict())
    else:
        click.echo(f"Uninstalling removes module(s): {', '.join(impact.modules)}")
        for module, tables in impact.tables.items():
            for table, count in tables.items():
                click.echo(f"  {module}: table {table} ({count} rows)")
            if not tables:
                click.echo(f"  {module}: no tables")
    if not purge:
        raise click.ClickException(
            "uninstalling drops these tables; pass --purge to confirm, or use"
            " `crm modules disable` to keep the data"
        )
    if not yes:
        click.confirm("A backup is made first. Go on?", abort=True)
    done, backup_path = lifecycle.uninstall(crm, name)
    click.echo(f"Backup: {backup_path}")
    click.echo(f"Uninstalled: {', '.join(done.modules)}")


@modules.command()
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Upgrade every installed module.")
def upgrade(names: tuple[str, ...], all_: bool) -> None:
    """Apply new migrations of installed modules."""
    from core import modules as lifecycle

    if not names and not all_:
        raise click.UsageError("name at least one module, or pass --all")
    done = lifecycle.upgrade(open_crm(), None if all_ else names)
    click.echo(f"Upgraded: {', '.join(done)}" if done else "Nothing to upgrade")
