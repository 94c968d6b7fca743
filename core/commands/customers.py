"""``crm customers``: import and export; ``crm demo``: load demo data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

if TYPE_CHECKING:
    from core.csvimport import Summary
    from core.runtime import Crm

from core.commands import FORMAT_OPTION, open_crm, print_json


@click.group()
def customers() -> None:
    """Import and export customers."""


@customers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and count everything, write nothing.")
@click.option(
    "--on-error",
    type=click.Choice(["abort", "skip"]),
    default="abort",
    show_default=True,
    help="abort: write nothing if any row is bad; skip: write the good rows.",
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="COLUMN=field",
    help="Read COLUMN as field (COLUMN=- ignores it). Repeatable.",
)
@click.option(
    "--rejected",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write rejected rows (default: FILE.rejected.csv).",
)
@FORMAT_OPTION
def import_(
    file: Path, dry_run: bool, on_error: str, maps: tuple[str, ...], rejected: Path | None, fmt: str
) -> None:
    """Import customers from a UTF-8 CSV file, matching existing ones by identity."""
    from core import csvimport
    from core.customers import importer

    crm = open_crm()
    mapping = importer.parse_mapping(list(maps))
    rejected = rejected or file.with_name(file.stem + ".rejected.csv")
    rejected.unlink(missing_ok=True)
    with csvimport.open_csv(file) as handle:
        summary = _run_with_progress(crm, handle, file, mapping, dry_run, on_error, rejected)
    if fmt == "json":
        print_json(summary.as_dict())
    else:
        verb = "Would import" if dry_run else "Imported"
        click.echo(
            f"{verb}: created {summary.created}, updated {summary.updated}, unchanged "
            f"{summary.unchanged}, rejected {summary.rejected} in {summary.seconds} s"
        )
        for error in summary.errors[:20]:
            where = f"line {error['line']}" + (f", {error['field']}" if error["field"] else "")
            click.echo(f"  {where}: {error['error']}", err=True)
        if summary.rejected_file:
            click.echo(f"Rejected rows with reasons: {summary.rejected_file}", err=True)
    if summary.rejected and on_error == "abort":
        click.echo("Nothing was written: fix the rows above or pass --on-error skip", err=True)
        sys.exit(1)


def _run_with_progress(
    crm: Crm,
    handle: TextIO,
    file: Path,
    mapping: dict[str, str],
    dry_run: bool,
    on_error: str,
    rejected: Path,
) -> Summary:
    """Run the import, with a progress bar when standard error is a terminal."""
    from core.customers import importer

    kwargs = {
        "mapping": mapping,
        "dry_run": dry_run,
        "on_error": on_error,
        "rejected_path": rejected,
        "source": file.name,
    }
    if not sys.stderr.isatty():
        return importer.import_rows(crm, handle, **kwargs)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    size = file.stat().st_size or 1
    with Progress(
        TextColumn("importing"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("import", total=size)

        def advance(rows: int) -> None:
            bar.update(task, completed=rows)
            bar.update(task, total=max(size, rows))

        return importer.import_rows(crm, handle, progress=advance, **kwargs)


@customers.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: standard output).",
)
@click.option("--q", default=None, help="Accent-insensitive name prefix.")
@click.option("--tag", default=None)
@click.option("--owner", default=None, help="E-mail of the owner.")
@click.option("--kind", type=click.Choice(["person", "company"]), default=None)
@click.option("--country", default=None)
@click.option(
    "--archived", type=click.Choice(["false", "true", "any"]), default="false", show_default=True
)
def export(
    fmt: str,
    out: Path | None,
    q: str | None,
    tag: str | None,
    owner: str | None,
    kind: str | None,
    country: str | None,
    archived: str,
) -> None:
    """Export customers (streamed), CSV cells neutralised against formula injection."""
    from core import audit
    from core import users as user_service
    from core.customers import exporter, listing

    crm = open_crm()
    owner_id = None
    if owner:
        with crm.db.session() as session:
            owner_id = user_service.get_user(session, owner).id
    filters = listing.Filters(
        q=q,
        tag=tag,
        owner_id=owner_id,
        kind=kind,
        country=country,
        archived=listing.archived_filter(archived),
    )
    write = exporter.write_csv if fmt == "csv" else exporter.write_json
    if out is None:
        count = write(sys.stdout, exporter.records(crm, filters))
    else:
        with open(out, "w", encoding="utf-8", newline="") as handle:
            count = write(handle, exporter.records(crm, filters))
    with crm.db.write() as session:
        audit.record(
            session, "export", "customer", None, after={"rows": count}, detail=f"filters: {filters}"
        )
    if out is not None:
        click.echo(f"Exported {count} customers to {out}", err=True)


@click.command()
@click.option(
    "--count",
    default=300,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="How many customers.",
)
@click.option("--seed", default=42, show_default=True, help="Same seed, same data.")
def demo(count: int, seed: int) -> None:
    """Load a realistic, reproducible demo data set (modules add theirs through a hook)."""
    from core.customers import demo_data

    crm = open_crm()
    summary = demo_data.load(crm, count, seed)
    click.echo(
        f"Demo customers: created {summary.created}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}"
    )
    for module, result in demo_data.load_modules(crm, seed):
        click.echo(f"Demo data of {module}: {result}")
