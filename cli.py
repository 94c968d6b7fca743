"""The ``crm`` command: the core's commands plus those of enabled modules.

Plugin commands are added through the ``register_commands`` hook, only for enabled modules, and
only when the command line needs them. A plugin that fails there is reported and skipped.
"""

from __future__ import annotations

import logging
import sys

import click

from core import __version__
from core.commands import (
    check,
    customers,
    db,
    get_crm,
    modules,
    plugins,
    settings,
    setup,
    users,
    webhooks,
)
from core.errors import CrmError

CORE_COMMANDS: dict[str, click.Command] = {
    "init": setup.init,
    "serve": setup.serve,
    "modules": modules.modules,
    "plugins": plugins.plugins,
    "db": db.db,
    "check": check.check,
    "users": users.users,
    "teams": users.teams,
    "roles": users.roles,
    "customers": customers.customers,
    "demo": customers.demo,
    "settings": settings.settings,
    "webhooks": webhooks.webhooks,
}
#: Other spellings accepted for core commands, left out of the help (``crm plugin new``).
ALIASES = {"plugin": "plugins"}


class CrmGroup(click.Group):
    """The root group: core commands, then the commands of enabled modules."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        root = ctx.find_root()
        cached = root.meta.get("crm.plugin_commands")
        if cached is not None:
            return cached
        commands: dict[str, click.Command] = {}
        try:
            crm = get_crm(ctx)
            collector = click.Group()
            for result in crm.collect("register_commands", cli=collector):
                if result.error is not None:
                    click.echo(
                        f"Warning: module {result.plugin} could not add its commands:"
                        f" {result.error}",
                        err=True,
                    )
            for name, command in collector.commands.items():
                if name in CORE_COMMANDS:
                    click.echo(
                        f"Warning: a module tried to replace `crm {name}`; ignored", err=True
                    )
                else:
                    commands[name] = command
        except Exception as exc:  # settings, database or plugins: the core commands still work
            click.echo(f"Warning: module commands unavailable: {exc}", err=True)
        root.meta["crm.plugin_commands"] = commands
        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Core commands first, then module commands, each sorted."""
        return [*sorted(CORE_COMMANDS), *sorted(self._plugin_commands(ctx))]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A core command, else a command of an enabled module."""
        cmd_name = ALIASES.get(cmd_name, cmd_name)
        if cmd_name in CORE_COMMANDS:
            return CORE_COMMANDS[cmd_name]
        return self._plugin_commands(ctx).get(cmd_name)

    def invoke(self, ctx: click.Context):
        """Run the command, turning the core's errors into a message and exit status 1."""
        try:
            return super().invoke(ctx)
        except CrmError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except Exception as exc:
            from sqlalchemy.exc import OperationalError

            if not isinstance(exc, OperationalError):
                raise
            from sqlalchemy.engine import make_url

            url = make_url(get_crm(ctx).settings.database_url).render_as_string(hide_password=True)
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            click.echo(f"Error: cannot use the database at {url}: {reason}", err=True)
            ctx.exit(1)


@click.group(cls=CrmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="crm")
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """A modular CRM: customers in the core, everything else in modules."""
    from core import audit
    from core.modules import cli_actor

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx.with_resource(audit.acting_as(cli_actor()))


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="crm")
    except CrmError as exc:  # raised while building the command line, e.g. bad settings
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
