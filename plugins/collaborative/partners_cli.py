"""``crm collaborative`` commands of the partner network: list and add partners, invite a
partner's contact, share a customer with them and stop sharing it."""

from __future__ import annotations

from typing import Any

import click

from core.commands import FORMAT_OPTION, open_crm, print_json, print_table

KINDS = ("supplier", "distributor", "reseller", "referral", "service_provider")


def _system_user() -> Any:
    """The user the CLI acts as when applying record rules: it sees every customer."""
    from core.auth import SignedIn

    return SignedIn(0, "cli", "cli", "en", ("admin",), frozenset(), scope="all")


def _fail(exc: Exception) -> click.ClickException:
    from core.errors import Invalid

    if isinstance(exc, Invalid):
        return click.ClickException("; ".join(f"{k}: {v}" for k, v in exc.errors.items()))
    return click.ClickException(str(exc))


@click.command("partners")
@click.option("--kind", type=click.Choice(KINDS), help="Only partners of this kind.")
@FORMAT_OPTION
def list_partners(kind: str | None, fmt: str) -> None:
    """List partners by name, with their number of contacts and links."""
    from sqlalchemy import func, select

    from plugins.collaborative.models import Partner, PartnerContact, PartnerLink

    crm = open_crm()
    contacts = (
        select(func.count())
        .where(PartnerContact.partner_id == Partner.id)
        .correlate(Partner)
        .scalar_subquery()
    )
    links = (
        select(func.count())
        .where(PartnerLink.partner_id == Partner.id)
        .correlate(Partner)
        .scalar_subquery()
    )
    query = select(Partner, contacts, links).order_by(Partner.name, Partner.id)
    if kind:
        query = query.where(Partner.kind == kind)
    with crm.db.session() as session:
        rows = [
            {
                "id": p.id,
                "name": p.name,
                "kind": p.kind,
                "email": p.email,
                "phone": p.phone,
                "active": p.active,
                "contacts": n_contacts,
                "links": n_links,
            }
            for p, n_contacts, n_links in session.execute(query)
        ]
    if fmt == "json":
        print_json(rows)
        return
    if not rows:
        click.echo("No partners.")
        return
    columns = ["id", "name", "kind", "email", "phone", "active", "contacts", "links"]
    print_table(columns, [[r[c] for c in columns] for r in rows], title=f"{len(rows)} partner(s)")


@click.command("partner-add")
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), required=True)
@click.option("--email", default=None, help="The partner's e-mail address.")
@click.option("--phone", default=None, help="Read as dialled in the CRM's default region.")
@click.option("--website", default=None, help="An http:// or https:// address.")
def add_partner(
    name: str, kind: str, email: str | None, phone: str | None, website: str | None
) -> None:
    """Add a partner."""
    from core.errors import Invalid
    from plugins.collaborative import partners

    crm = open_crm()
    values = {"name": name, "kind": kind, "email": email, "phone": phone, "website": website}
    try:
        with crm.db.write() as session:
            partner = partners.create_partner(session, values, crm.settings.default_region)
            partner_id = partner.id
    except Invalid as exc:
        raise _fail(exc) from None
    click.echo(f"Added partner {partner_id}: {name}")


@click.command("partner-invite")
@click.argument("contact_id", type=int)
def invite_contact(contact_id: int) -> None:
    """Give a partner's contact a sign-in (role partner) and print its password once."""
    from core.errors import Conflict, Invalid
    from plugins.collaborative import partners
    from plugins.collaborative.models import PartnerContact

    crm = open_crm()
    try:
        with crm.db.write() as session:
            contact = session.get(PartnerContact, contact_id)
            if contact is None:
                raise click.ClickException(f"no partner contact {contact_id}")
            invitation = partners.invite(session, contact)
    except (Invalid, Conflict) as exc:
        raise _fail(exc) from None
    click.echo(f"Invited {invitation.email} (user {invitation.user_id}).")
    click.echo(f"Password (shown once, only its hash is stored): {invitation.password}")


def _user_id(session: Any, email: str) -> int:
    from core import users
    from core.errors import NotFoundError

    try:
        return users.get_user(session, email).id
    except NotFoundError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("share")
@click.argument("customer_id", type=int)
@click.argument("email")
@click.option("--note", default="", help="Why it is shared.")
def share(customer_id: int, email: str, note: str) -> None:
    """Share a customer with a partner contact's sign-in (by e-mail)."""
    from core.errors import Conflict, Invalid, NotFoundError
    from plugins.collaborative import partners

    crm = open_crm()
    try:
        with crm.db.write() as session:
            user_id = _user_id(session, email)
            partners.share_customer(crm, session, _system_user(), customer_id, user_id, note)
    except (Invalid, Conflict, NotFoundError) as exc:
        raise _fail(exc) from None
    click.echo(f"Customer {customer_id} is shared with {email}.")


@click.command("unshare")
@click.argument("customer_id", type=int)
@click.argument("email")
def unshare(customer_id: int, email: str) -> None:
    """Stop sharing a customer with a partner contact."""
    from core.errors import NotFoundError
    from plugins.collaborative import partners

    crm = open_crm()
    try:
        with crm.db.write() as session:
            user_id = _user_id(session, email)
            partners.unshare(crm, session, _system_user(), customer_id, user_id)
    except NotFoundError as exc:
        raise _fail(exc) from None
    click.echo(f"Customer {customer_id} is no longer shared with {email}.")


def register(group: click.Group) -> None:
    """Add the partner commands to ``crm collaborative``."""
    for command in (list_partners, add_partner, invite_contact, share, unshare):
        group.add_command(command)
