"""``crm smart-sales generate``, ``expire`` and ``alerts``: raise, expire and list sales alerts.

``generate`` raises up-sell and churn alerts after an analytics refresh (cross-sell alerts come
with each mining run too); schedule it with ``expire`` daily, after ``crm analytics refresh``.
``alerts`` is the administrator's view: every alert, whoever owns it.
"""

from __future__ import annotations

from typing import Any

import click

from core.commands import FORMAT_OPTION, open_crm, print_json, print_table

KINDS = ("cross_sell", "up_sell", "churn")
STATES = ("new", "seen", "acted", "converted", "dismissed", "expired")


@click.command("generate")
@click.option(
    "--kind",
    "kinds",
    type=click.Choice(KINDS),
    multiple=True,
    help="Only these kinds (repeat the option) [default: all].",
)
@click.option(
    "--customer",
    "customers",
    type=click.IntRange(min=1),
    multiple=True,
    help="Only this customer id (repeat the option) [default: every customer].",
)
def generate(kinds: tuple[str, ...], customers: tuple[int, ...]) -> None:
    """Raise the alerts that are due (cross-sell from the current rules, up-sell, churn)."""
    from core import audit
    from core.modules import cli_actor
    from plugins.smart_sales import alerts

    crm = open_crm()
    with crm.db.write() as session, audit.acting_as(cli_actor()):
        raised = alerts.generate(
            crm,
            session,
            customer_ids=list(customers) or None,
            kinds=kinds or KINDS,
            source="generate",
        )
    click.echo(f"{raised} alert(s) raised.")


@click.command("expire")
def expire() -> None:
    """Close the open alerts whose lifetime (alert_days) has passed."""
    from core import audit
    from core.modules import cli_actor
    from plugins.smart_sales import alerts

    crm = open_crm()
    with crm.db.write() as session, audit.acting_as(cli_actor()):
        closed = alerts.expire(crm, session)
    click.echo(f"{closed} alert(s) expired.")


@click.command("alerts")
@click.option("--user", "email", default=None, help="Only the alerts this user owns (e-mail).")
@click.option(
    "--state",
    "states",
    type=click.Choice([*STATES, "open", "all"]),
    multiple=True,
    help="Only these states (repeat); open = new, seen, acted [default: open].",
)
@click.option("--kind", type=click.Choice(KINDS), default=None, help="Only this kind.")
@click.option("--customer", type=click.IntRange(min=1), default=None, help="Only this customer.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=200, show_default=True, help="At most this many."
)
@FORMAT_OPTION
def list_alerts(
    email: str | None,
    states: tuple[str, ...],
    kind: str | None,
    customer: int | None,
    limit: int,
    fmt: str,
) -> None:
    """List alerts, whoever owns them: highest tier and expected value first."""
    from sqlalchemy import select

    from core import users
    from core.customers.models import Customer
    from core.errors import NotFoundError
    from core.models import User
    from plugins.smart_sales import alerts
    from plugins.smart_sales.models import OPEN_STATES, Alert

    wanted: set[str] = set()
    for state in states or ("open",):
        wanted.update(OPEN_STATES if state == "open" else STATES if state == "all" else (state,))
    crm = open_crm()
    with crm.db.session() as session:
        query = select(Alert, Customer.display_name, User.email).join(
            Customer, Customer.id == Alert.customer_id
        )
        query = query.outerjoin(User, User.id == Alert.owner_id).where(Alert.state.in_(wanted))
        if email:
            try:
                owner = users.get_user(session, email)
            except NotFoundError as exc:
                raise click.ClickException(str(exc)) from None
            query = query.where(Alert.owner_id == owner.id)
        if kind:
            query = query.where(Alert.kind == kind)
        if customer:
            query = query.where(Alert.customer_id == customer)
        query = query.order_by(
            alerts.tier_rank(), Alert.expected_value_minor.desc(), Alert.id
        ).limit(limit)
        found = session.execute(query).all()
        products = alerts.products_for(session, [row[0] for row in found])
        data: list[dict[str, Any]] = []
        for alert, name, owner_email in found:
            item = alerts.as_dict(alert, products, customer_name=name)
            item["owner"] = owner_email
            data.append(item)
    if fmt == "json":
        print_json(data)
        return
    columns = ["id", "state", "kind", "customer", "offer", "owner", "tier", "expected value"]
    rows = [
        [
            d["id"],
            d["state"],
            d["kind"],
            d["customer_name"],
            d["headline"],
            d["owner"] or "—",
            d["value_tier"] or "—",
            f"{d['expected_value_minor']} {d['currency']}",
        ]
        for d in data
    ]
    print_table(columns, rows, title=f"{len(rows)} alert(s)")


def register(group: click.Group) -> None:
    """Add ``generate``, ``expire`` and ``alerts`` to ``crm smart-sales``."""
    for command in (generate, expire, list_alerts):
        group.add_command(command)
