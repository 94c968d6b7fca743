"""``crm plugins``: what plugins are installed and how they loaded; a new plugin's skeleton."""

from __future__ import annotations

from pathlib import Path

import click

from core.commands import FORMAT_OPTION, get_crm, print_json, print_table


@click.group()
def plugins() -> None:
    """Installed plugins, and a skeleton for writing your own."""


@plugins.command("list")
@FORMAT_OPTION
def list_(fmt: str) -> None:
    """Every distribution providing plugins: version, hooks, enabled state, load errors."""
    from core.plugin_report import plugin_report

    report = plugin_report(get_crm())
    if fmt == "json":
        print_json([entry.as_dict() for entry in report])
        return
    print_table(
        ["plugin", "distribution", "version", "state", "hooks", "errors"],
        [
            [
                e.name,
                e.distribution or "",
                e.version or "",
                e.state,
                ", ".join(e.hooks),
                "; ".join(e.errors),
            ]
            for e in report
        ],
    )


@plugins.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the package (default: ./crm-NAME).",
)
def new(name: str, directory: Path | None) -> None:
    """Write a pip-installable plugin package named NAME, with tests, ready to enable."""
    from core.scaffold import create_plugin

    root = create_plugin(name, directory)
    click.echo(f"Created {root}")
    click.echo("Next:")
    click.echo(f"  pip install -e '{root}[test]'")
    click.echo(f"  crm modules enable {name}")
    click.echo(f"  pytest {root / 'tests'}")
