"""``crm users``: people, their roles and their API tokens."""

from __future__ import annotations

import click

from core.commands import FORMAT_OPTION, open_crm, print_json, print_table


@click.group()
def users() -> None:
    """Add users, set their roles, deactivate them, manage API tokens."""


def _password_option(func):
    return click.option(
        "--password",
        default=None,
        help="The password (asked for when omitted; '-' generates one and prints it once).",
    )(func)


def _resolve_password(password: str | None) -> tuple[str, bool]:
    from core.auth import generate_password

    if password == "-":
        return generate_password(), True
    if password is None:
        return click.prompt("Password", hide_input=True, confirmation_prompt=True), False
    return password, False


@users.command()
@click.argument("email")
@click.option("--name", default="", help="Full name (defaults to the e-mail).")
@click.option(
    "--role",
    "roles",
    multiple=True,
    default=("sales",),
    show_default=True,
    help="A role; repeat for several.",
)
@click.option("--language", type=click.Choice(["en", "vi", "fa"]), default="en", show_default=True)
@_password_option
def add(email: str, name: str, roles: tuple[str, ...], language: str, password: str | None) -> None:
    """Add a user."""
    from core import events
    from core import users as service

    crm = open_crm()
    secret, generated = _resolve_password(password)
    try:
        with crm.db.write() as session:
            user = service.create_user(session, email, name, secret, roles, language)
            events.emit(session, crm, "user_created", user=user)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Added {user.email} ({', '.join(user.role_names)})")
    if generated:
        click.echo(f"Password (shown once): {secret}")


@users.command("list")
@FORMAT_OPTION
def list_(fmt: str) -> None:
    """Every user with roles and status."""
    from sqlalchemy import select

    from core.models import User

    crm = open_crm()
    with crm.db.session() as session:
        rows = [
            {
                "email": u.email,
                "name": u.name,
                "roles": u.role_names,
                "active": u.is_active,
                "language": u.language,
                "created_at": u.created_at.isoformat(),
            }
            for u in session.scalars(select(User).order_by(User.email))
        ]
    if fmt == "json":
        print_json(rows)
        return
    print_table(
        ["email", "name", "roles", "active", "language"],
        [[r["email"], r["name"], ", ".join(r["roles"]), r["active"], r["language"]] for r in rows],
    )


@users.command("set-role")
@click.argument("email")
@click.argument("roles", nargs=-1, required=True)
def set_role(email: str, roles: tuple[str, ...]) -> None:
    """Replace a user's roles with ROLES."""
    from core import users as service

    crm = open_crm()
    try:
        with crm.db.write() as session:
            user = service.get_user(session, email)
            service.set_roles(session, user, roles)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{email}: {', '.join(roles)}")


@users.command("set-password")
@click.argument("email")
@_password_option
def set_password(email: str, password: str | None) -> None:
    """Change a user's password; their sessions and API tokens end."""
    from core import users as service

    crm = open_crm()
    secret, generated = _resolve_password(password)
    try:
        with crm.db.write() as session:
            service.set_password(session, service.get_user(session, email), secret)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Password changed for {email}")
    if generated:
        click.echo(f"Password (shown once): {secret}")


@users.command()
@click.argument("email")
def deactivate(email: str) -> None:
    """Deactivate a user: they can no longer sign in, sessions and tokens end."""
    from core import users as service

    crm = open_crm()
    with crm.db.write() as session:
        service.deactivate(session, service.get_user(session, email))
    click.echo(f"Deactivated {email}")


@users.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--user", "email", required=True, help="E-mail of the token's user.")
@click.option("--name", required=True, help="What the token is for.")
@click.option(
    "--expires-days",
    type=click.IntRange(1, 3650),
    default=None,
    help="Expire after this many days (default: never).",
)
def token_create(email: str, name: str, expires_days: int | None) -> None:
    """Create an API token; it is printed once and only its hash is stored."""
    import datetime as dt

    from core import auth
    from core import users as service
    from core.db import utcnow

    crm = open_crm()
    expires = utcnow() + dt.timedelta(days=expires_days) if expires_days else None
    with crm.db.write() as session:
        user = service.get_user(session, email)
        if not user.is_active:
            raise click.ClickException(f"{email} is deactivated")
        new = auth.create_token(session, user, name, expires)
    click.echo(new.secret)
    click.echo(f"Token {name!r} for {email} (shown once; store it now)", err=True)


@token.command("revoke")
@click.option("--user", "email", required=True, help="E-mail of the token's user.")
@click.option("--name", default=None, help="The token to revoke (default: all of the user's).")
def token_revoke(email: str, name: str | None) -> None:
    """Revoke a user's API tokens."""
    from core import auth
    from core import users as service

    crm = open_crm()
    with crm.db.write() as session:
        count = auth.revoke_tokens(session, service.get_user(session, email), name)
    if count == 0:
        raise click.ClickException(
            f"no active token{' named ' + repr(name) if name else ''} for {email}"
        )
    click.echo(f"Revoked {count} token(s) of {email}")


@token.command("list")
@click.option("--user", "email", required=True, help="E-mail of the tokens' user.")
@FORMAT_OPTION
def token_list(email: str, fmt: str) -> None:
    """A user's API tokens (never the secrets)."""
    from sqlalchemy import select

    from core import users as service
    from core.models import ApiToken

    crm = open_crm()
    with crm.db.session() as session:
        user = service.get_user(session, email)
        rows = [
            {
                "name": t.name,
                "prefix": t.prefix,
                "created_at": t.created_at.isoformat(),
                "expires_at": t.expires_at and t.expires_at.isoformat(),
                "revoked": t.revoked_at is not None,
            }
            for t in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id))
        ]
    if fmt == "json":
        print_json(rows)
    else:
        print_table(
            ["name", "prefix", "created", "expires", "revoked"], [list(r.values()) for r in rows]
        )


@users.command("set-team")
@click.argument("email")
@click.argument("team")
def set_team(email: str, team: str) -> None:
    """Put a user in TEAM ('-' for no team); team-scoped roles then see the team's records."""
    from core import users as service

    crm = open_crm()
    try:
        with crm.db.write() as session:
            user = service.get_user(session, email)
            service.set_team(
                session, user, None if team == "-" else service.get_team(session, team)
            )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{email}: team {team}")


@click.group()
def teams() -> None:
    """Teams of users; roles with the 'team' scope see their team's records."""


@teams.command("add")
@click.argument("name")
@click.option("--label", default="", help="The name people see (defaults to NAME).")
def team_add(name: str, label: str) -> None:
    """Add a team."""
    from core import users as service

    crm = open_crm()
    try:
        with crm.db.write() as session:
            team = service.add_team(session, name, label)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Added team {team.name}")


@teams.command("list")
@FORMAT_OPTION
def team_list(fmt: str) -> None:
    """List teams and their members."""
    from sqlalchemy import select

    from core.models import Team, User

    crm = open_crm()
    with crm.db.session() as session:
        rows = [
            {
                "name": team.name,
                "label": team.label,
                "members": list(
                    session.scalars(
                        select(User.email).where(User.team_id == team.id).order_by(User.email)
                    )
                ),
            }
            for team in session.scalars(select(Team).order_by(Team.name))
        ]
    if fmt == "json":
        print_json(rows)
        return
    print_table(
        ["team", "label", "members"],
        [[r["name"], r["label"], ", ".join(r["members"])] for r in rows],
    )


@click.group()
def roles() -> None:
    """Roles, their permissions and the records they see."""


@roles.command("list")
@FORMAT_OPTION
def role_list(fmt: str) -> None:
    """List roles with their scope and number of permissions."""
    from sqlalchemy import func, select

    from core.models import Role, RolePermission

    crm = open_crm()
    with crm.db.session() as session:
        counts = dict(
            session.execute(
                select(RolePermission.role, func.count()).group_by(RolePermission.role)
            ).all()
        )
        rows = [
            {
                "name": r.name,
                "label": r.label,
                "module": r.module,
                "scope": r.scope,
                "permissions": counts.get(r.name, 0),
            }
            for r in session.scalars(select(Role).order_by(Role.name))
        ]
    if fmt == "json":
        print_json(rows)
        return
    print_table(
        ["role", "label", "module", "scope", "permissions"],
        [[r["name"], r["label"], r["module"], r["scope"], r["permissions"]] for r in rows],
    )


@roles.command("scope")
@click.argument("role")
@click.argument("scope", type=click.Choice(["shared", "own", "team", "all"]))
def role_scope(role: str, scope: str) -> None:
    """Set which records holders of ROLE see: shared with them, their own, their team's, all."""
    from core import users as service

    crm = open_crm()
    try:
        with crm.db.write() as session:
            service.set_role_scope(session, role, scope)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{role}: scope {scope}")
