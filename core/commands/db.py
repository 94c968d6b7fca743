"""``crm db``: schema upgrades, the current revisions, backups and restores."""

from __future__ import annotations

from pathlib import Path

import click

from core.commands import FORMAT_OPTION, get_crm, open_crm, print_json, print_table


@click.group()
def db() -> None:
    """Database schema, backup and restore."""


@db.command()
def upgrade() -> None:
    """Bring the core's and every installed module's schema up to date."""
    from core import migrate
    from core import modules as lifecycle

    crm = open_crm()
    with crm.db.writer.connect() as conn, conn.begin():
        migrate.upgrade(crm, conn, "core")
    done = lifecycle.upgrade(crm, None)
    click.echo(f"Schema up to date (core{''.join(', ' + m for m in done)})")


@db.command()
@FORMAT_OPTION
def current(fmt: str) -> None:
    """The schema revision of the core and each installed module, against the code's."""
    from core import migrate
    from core import modules as lifecycle

    crm = open_crm()
    present = lifecycle.installed(crm)
    with crm.db.engine.connect() as conn:
        statuses = migrate.status(crm, conn, present)
    if fmt == "json":
        print_json([{**s.__dict__, "up_to_date": s.up_to_date} for s in statuses])
        return
    print_table(
        ["module", "current", "head", "up to date"],
        [[s.module, s.current, s.head, "yes" if s.up_to_date else "NO"] for s in statuses],
    )


@db.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Back the whole database up to FILE, safely while the product runs."""
    from core.backup import backup as make_backup

    path = make_backup(open_crm(), file)
    click.echo(f"Backup written to {path}")


@db.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore(file: Path, yes: bool) -> None:
    """Replace the database with the backup in FILE (stop the servers first)."""
    from core.backup import restore as do_restore

    crm = get_crm()
    if not yes:
        click.confirm(f"Replace everything in {crm.settings.database_url} with {file}?", abort=True)
    do_restore(crm, file)
    click.echo(f"Restored {file}")
