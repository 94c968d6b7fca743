"""``crm orders import`` and ``crm products import``: streamed CSV imports."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from core.commands import FORMAT_OPTION, open_crm, print_json

if TYPE_CHECKING:
    from core.csvimport import Summary


def _import_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every import shares (as ``crm customers import`` has them)."""
    for option in reversed(
        (
            click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
            click.option(
                "--dry-run", is_flag=True, help="Check and count everything, write nothing."
            ),
            click.option(
                "--on-error",
                type=click.Choice(["abort", "skip"]),
                default="abort",
                show_default=True,
                help="abort: write nothing if any row is bad; skip: write the good ones.",
            ),
            click.option(
                "--map",
                "maps",
                multiple=True,
                metavar="COLUMN=field",
                help="Read COLUMN as field (COLUMN=- ignores it). Repeatable.",
            ),
            click.option(
                "--rejected",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="Where to write rejected rows (default: FILE.rejected.csv).",
            ),
            FORMAT_OPTION,
        )
    ):
        command = option(command)
    return command


@click.group()
def orders() -> None:
    """Import orders."""


@orders.command("import")
@_import_options
@click.option(
    "--create-customers",
    is_flag=True,
    help="Create customers no row matches (else such rows are rejected).",
)
@click.option(
    "--create-products/--no-create-products",
    default=True,
    show_default=True,
    help="Create products on first sight of their SKU.",
)
@click.option("--notify", is_flag=True, help="Call order_placed for every created order.")
def import_orders(
    file: Path,
    dry_run: bool,
    on_error: str,
    maps: tuple[str, ...],
    rejected: Path | None,
    fmt: str,
    create_customers: bool,
    create_products: bool,
    notify: bool,
) -> None:
    """Import orders from a UTF-8 CSV file, one row per order line.

    Columns: order_ref, customer_ref (or email / phone), placed_at, sku, quantity,
    unit_price, discount, amount, currency, channel, status; customer_name and product_name
    name what --create-customers and --create-products create. A row with an amount and no
    sku is an order whose lines are unknown. Orders are matched by order_ref, so importing a
    file again creates nothing. Amounts are in major units (125000 VND, 12.50 USD).
    """
    from core import csvimport
    from plugins.operational import importer

    options = {
        "create_customers": create_customers,
        "create_products": create_products,
        "notify": notify,
    }
    mapping = csvimport.parse_mapping(list(maps), importer.ORDER_COLUMNS)
    summary = _run(importer.import_orders, file, mapping, dry_run, on_error, rejected, options)
    _report(summary, fmt, dry_run, on_error, "orders")


@click.group()
def products() -> None:
    """Import products."""


@products.command("import")
@_import_options
def import_products(
    file: Path,
    dry_run: bool,
    on_error: str,
    maps: tuple[str, ...],
    rejected: Path | None,
    fmt: str,
) -> None:
    """Import products from a UTF-8 CSV file, matched by SKU.

    Columns: sku, name, category, price, cost, currency, active, upgrade_to (another SKU).
    Empty cells keep what an existing product has.
    """
    from core import csvimport
    from plugins.operational import importer

    mapping = csvimport.parse_mapping(list(maps), importer.PRODUCT_COLUMNS)
    summary = _run(importer.import_products, file, mapping, dry_run, on_error, rejected, {})
    _report(summary, fmt, dry_run, on_error, "products")


def _run(
    function: Callable[..., Summary],
    file: Path,
    mapping: dict[str, str],
    dry_run: bool,
    on_error: str,
    rejected: Path | None,
    options: dict[str, Any],
) -> Summary:
    """Run an import of ``file``, with a progress bar when standard error is a terminal."""
    from core import csvimport

    crm = open_crm()
    rejected = rejected or file.with_name(file.stem + ".rejected.csv")
    rejected.unlink(missing_ok=True)
    kwargs = {
        "mapping": mapping,
        "dry_run": dry_run,
        "on_error": on_error,
        "rejected_path": rejected,
        "source": file.name,
        **options,
    }
    with csvimport.open_csv(file) as handle:
        if not sys.stderr.isatty():
            return function(crm, handle, **kwargs)
        return _with_progress(function, crm, handle, file, kwargs)


def _with_progress(
    function: Callable[..., Summary], crm: Any, handle: TextIO, file: Path, kwargs: dict[str, Any]
) -> Summary:
    """Run the import under a progress bar that follows the bytes read."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    size = file.stat().st_size or 1
    with Progress(
        TextColumn("importing"),
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("import", total=size, rows=0)

        def advance(rows: int) -> None:
            bar.update(task, completed=min(handle.buffer.tell(), size), rows=rows)

        return function(crm, handle, progress=advance, **kwargs)


def _report(summary: Summary, fmt: str, dry_run: bool, on_error: str, what: str) -> None:
    """Print the summary (JSON or a line), the first errors; exit 1 when abort refused."""
    if fmt == "json":
        print_json(summary.as_dict())
    else:
        verb = "Would import" if dry_run else "Imported"
        click.echo(
            f"{verb} {what}: created {summary.created}, updated {summary.updated}, unchanged "
            f"{summary.unchanged}, rejected rows {summary.rejected} in {summary.seconds} s"
        )
        extra = {
            k: v
            for k in ("lines", "customers_created", "products_created", "notified")
            if (v := getattr(summary, k, 0))
        }
        if extra:
            click.echo("  " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in extra.items()))
        for error in summary.errors[:20]:
            where = f"line {error['line']}" + (f", {error['field']}" if error["field"] else "")
            click.echo(f"  {where}: {error['error']}", err=True)
        if summary.rejected_file:
            click.echo(f"Rejected rows with reasons: {summary.rejected_file}", err=True)
    if summary.rejected and on_error == "abort":
        click.echo("Nothing was written: fix the rows above or pass --on-error skip", err=True)
        sys.exit(1)


def commands() -> list[click.Command]:
    """The command groups this feature adds to ``crm``: ``orders`` and ``products``."""
    return [orders, products]
