"""``crm collaborative teams | team-set | member-add | member-remove | account-team``.

TEAM is a team's short name (``crm users teams``) or its id; users are named by e-mail. An
unknown team, user or customer prints a clear message and exits 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from core.commands import FORMAT_OPTION, open_crm, print_json, print_table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def _team_id(session: Session, name: str) -> int:
    from sqlalchemy import select

    from core.models import Team

    query = select(Team.id).where(Team.name == name.strip().lower())
    if name.strip().isdigit():
        query = select(Team.id).where(Team.id == int(name.strip()))
    found = session.scalar(query)
    if found is None:
        known = ", ".join(session.scalars(select(Team.name).order_by(Team.name))) or "none yet"
        raise click.ClickException(f"no team {name!r} (teams: {known})")
    return found


def _user_id(session: Session, email: str) -> int:
    from core import users
    from core.errors import NotFoundError

    try:
        return users.get_user(session, email).id
    except NotFoundError as exc:
        raise click.ClickException(str(exc)) from None


def _change(call: Any) -> Any:
    from core.errors import Invalid, NotFoundError

    try:
        return call()
    except (Invalid, NotFoundError) as exc:
        raise click.ClickException(str(exc)) from None


@click.command("teams")
@FORMAT_OPTION
def teams(fmt: str) -> None:
    """List departments with their kind, lead and members."""
    from plugins.collaborative import departments

    crm = open_crm()
    with crm.db.session() as session:
        rows = departments.list_teams(session)
    if fmt == "json":
        print_json(rows)
        return
    if not rows:
        click.echo("No teams yet: add them with `crm teams add`.")
        return
    print_table(
        ["name", "label", "kind", "lead", "members"],
        [
            [
                r["name"],
                r["label"],
                r["kind"],
                r["lead_name"] or "—",
                ", ".join(f"{m['name']} ({m['role']})" for m in r["members"]),
            ]
            for r in rows
        ],
        title=f"{len(rows)} team(s)",
    )


@click.command("team-set")
@click.argument("team")
@click.option("--kind", default=None, help="Kind of department (setting team_kinds).")
@click.option("--lead", default=None, metavar="EMAIL", help="The team lead ('' for none).")
@click.option("--description", default=None, help="What the department does.")
def team_set(team: str, kind: str | None, lead: str | None, description: str | None) -> None:
    """Set a department's kind, lead and description."""
    from plugins.collaborative import departments

    crm = open_crm()
    with crm.db.write() as session:
        team_id = _team_id(session, team)
        lead_id: Any = departments.KEEP
        if lead is not None:
            lead_id = _user_id(session, lead) if lead.strip() else None
        profile = _change(
            lambda: departments.set_profile(
                crm,
                session,
                team_id,
                kind=departments.KEEP if kind is None else kind.strip().lower(),
                lead_id=lead_id,
                description=departments.KEEP if description is None else description,
            )
        )
        click.echo(f"Team {team}: kind {profile.kind}, lead {lead or profile.lead_id or '—'}.")


@click.command("member-add")
@click.argument("team")
@click.argument("email")
@click.option("--role", default="member", show_default=True, help="Their role in the team.")
def member_add(team: str, email: str, role: str) -> None:
    """Add a user to a department (or change their role there)."""
    from plugins.collaborative import departments

    crm = open_crm()
    with crm.db.write() as session:
        team_id, user_id = _team_id(session, team), _user_id(session, email)
        _change(lambda: departments.add_member(session, team_id, user_id, role))
    click.echo(f"{email} is in team {team} as {role}.")


@click.command("member-remove")
@click.argument("team")
@click.argument("email")
def member_remove(team: str, email: str) -> None:
    """Take a user out of a department."""
    from plugins.collaborative import departments

    crm = open_crm()
    with crm.db.write() as session:
        team_id, user_id = _team_id(session, team), _user_id(session, email)
        if not _change(lambda: departments.remove_member(session, team_id, user_id)):
            raise click.ClickException(f"{email} is not a member of team {team}")
    click.echo(f"{email} left team {team}.")


@click.command("account-team")
@click.argument("customer_id", type=int)
@click.argument("team")
def account_team(customer_id: int, team: str) -> None:
    """Make TEAM the account team of customer CUSTOMER_ID."""
    from plugins.collaborative import departments

    crm = open_crm()
    with crm.db.write() as session:
        team_id = _team_id(session, team)
        _change(lambda: departments.set_account_team(session, customer_id, team_id, None))
    click.echo(f"Customer {customer_id}: account team {team}.")


def register(group: click.Group) -> None:
    """Add the department commands to ``crm collaborative``."""
    for command in (teams, team_set, member_add, member_remove, account_team):
        group.add_command(command)
