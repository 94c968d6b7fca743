"""``crm init`` and ``crm serve``."""

from __future__ import annotations

from pathlib import Path

import click

from core.commands import get_crm, open_crm


@click.command()
@click.option(
    "--admin-email",
    default="admin@example.com",
    show_default=True,
    help="E-mail of the first administrator.",
)
@click.option(
    "--admin-password",
    default=None,
    help="Password of the first administrator (generated and printed when omitted).",
)
@click.option("--no-config", is_flag=True, help="Do not write a generated secret key to crm.toml.")
def init(admin_email: str, admin_password: str | None, no_config: bool) -> None:
    """Create the database and the first administrator."""
    from core.bootstrap import initialise, write_secret_key

    crm = get_crm()
    try:
        result = initialise(crm, admin_email, admin_password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if not result.created:
        click.echo(f"Already initialised: {crm.settings.database_url}")
        return
    click.echo(f"Initialised {crm.settings.database_url}")
    if crm.settings.secret_key_is_default and not no_config:
        path = Path(crm.settings.config_file or "crm.toml")
        if write_secret_key(path):
            click.echo(f"Wrote a generated secret key to {path}")
    click.echo(f"Administrator: {result.admin_email}")
    if result.generated_password:
        click.echo(f"Password (shown once): {result.generated_password}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
def serve(host: str, port: int, workers: int, reload: bool) -> None:
    """Run the web server (API, and its documentation at /docs)."""
    import uvicorn

    from core import migrate

    crm = open_crm()
    migrate.require_current(crm, crm.enabled_modules())
    crm.close()
    click.echo(f"Serving on http://{host}:{port} (modules: {', '.join(crm.active())})")
    uvicorn.run(
        "core.web.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        proxy_headers=True,
    )
