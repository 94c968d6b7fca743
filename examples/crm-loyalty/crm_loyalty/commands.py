"""The module's commands, under ``crm <module name>``.

Heavy imports stay inside the commands, so that ``crm --help`` stays fast.
"""

import click

from core.commands import FORMAT_OPTION
from crm_loyalty import NAME


def register(cli: click.Group) -> None:
    """Add the module's group of commands and its subcommands to ``cli``."""

    @cli.group(name=NAME)
    def group() -> None:
        """Loyalty: points for orders, notes on customers."""

    @group.command()
    @FORMAT_OPTION
    def stats(fmt: str) -> None:
        """How many notes there are, and about how many customers."""
        from core.commands import open_crm, print_json
        from crm_loyalty import notes

        with open_crm().db.session() as session:
            counted = notes.stats(session)
        if fmt == "json":
            print_json(counted)
        else:
            click.echo(f"notes: {counted['notes']}, customers: {counted['customers']}")

    @group.command()
    @click.argument("customer_id", type=int)
    @FORMAT_OPTION
    def balance(customer_id: int, fmt: str) -> None:
        """A customer's points balance."""
        from core.commands import open_crm, print_json
        from crm_loyalty import points

        with open_crm().db.session() as session:
            earned = points.balance(session, customer_id)
        if fmt == "json":
            print_json({"customer_id": customer_id, "balance": earned})
        else:
            click.echo(f"customer {customer_id}: {earned} points")
