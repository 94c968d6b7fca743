"""``crm check``: the pre-deployment checklist."""

from __future__ import annotations

import sys

import click

from core.checks import LEVELS
from core.commands import FORMAT_OPTION, open_crm, print_json, print_table


@click.command()
@click.option("--deploy", is_flag=True, help="Include deployment items (attestations among them).")
@click.option("--module", default=None, help="Only this module's items ('core' for the core).")
@click.option(
    "--fail-level",
    type=click.Choice(LEVELS),
    default="error",
    show_default=True,
    help="Exit 1 when an open item is at this level or above.",
)
@click.option(
    "--ack", "ack_id", default=None, metavar="ID", help="Attest item ID as done (with --by)."
)
@click.option("--by", "by_email", default=None, metavar="EMAIL", help="Who attests (a user).")
@click.option("--note", default="", help="What was done, for the record.")
@FORMAT_OPTION
def check(
    deploy: bool,
    module: str | None,
    fail_level: str,
    ack_id: str | None,
    by_email: str | None,
    note: str,
    fmt: str,
) -> None:
    """Run the pre-deployment checklist, or attest an item with --ack ID --by EMAIL."""
    from core import checks

    crm = open_crm()
    if ack_id is not None:
        if not by_email:
            raise click.UsageError("--ack needs --by EMAIL: who confirms it")
        try:
            checks.attest(crm, ack_id, by_email, note)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"Attested {ack_id} by {by_email}")
        return
    results = checks.run(crm, deploy=deploy, module=module)
    if fmt == "json":
        print_json([r.as_dict() for r in results])
    else:
        print_table(
            ["id", "level", "category", "status", "message", "detail / hint"],
            [
                [
                    r.id,
                    r.level,
                    r.category,
                    r.status,
                    r.message,
                    r.detail or (r.hint if r.status == "open" else ""),
                ]
                for r in results
            ],
        )
        open_count = sum(r.status == "open" for r in results)
        click.echo(f"{len(results)} items, {open_count} open")
    failing = checks.failing(results, fail_level)
    if failing:
        if fmt != "json":
            click.echo(f"{len(failing)} open item(s) at level {fail_level} or above", err=True)
        sys.exit(1)
