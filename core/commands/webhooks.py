"""``crm webhooks``: endpoints, their deliveries, and the deliverer for cron or a worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from core.commands import FORMAT_OPTION, open_crm, print_json, print_table

if TYPE_CHECKING:
    from core.runtime import Crm


@click.group()
def webhooks() -> None:
    """Send events to other systems: register URLs, follow deliveries, deliver."""


@webhooks.command()
@FORMAT_OPTION
def events(fmt: str) -> None:
    """The event types the core and the enabled modules send."""
    from core.webhooks import declared_events

    rows = [
        {"name": name, "module": module, "label": event.label, "description": event.description}
        for name, (module, event) in sorted(declared_events(open_crm()).items())
    ]
    if fmt == "json":
        print_json(rows)
        return
    print_table(["event", "module", "label", "description"], [list(r.values()) for r in rows])


@webhooks.command()
@click.argument("url")
@click.option(
    "--event",
    "events_",
    multiple=True,
    required=True,
    help="An event to send (see `crm webhooks events`), or '*' for all; repeat for several.",
)
@click.option("--description", default="", help="What the endpoint is for.")
@FORMAT_OPTION
def add(url: str, events_: tuple[str, ...], description: str, fmt: str) -> None:
    """Register URL for events; its signing secret is printed once."""
    from core.webhooks import service

    crm = open_crm()
    with crm.db.write() as session:
        endpoint, secret = service.add_endpoint(session, crm, url, list(events_), description)
        data = service.endpoint_data(endpoint)
    if fmt == "json":
        print_json({**data, "secret": secret})
        return
    click.echo(f"Added webhook endpoint {data['id']}: {data['url']} ({', '.join(data['events'])})")
    click.echo(f"Signing secret (shown once; give it to the receiver now): {secret}")


@webhooks.command("list")
@FORMAT_OPTION
def list_(fmt: str) -> None:
    """Every endpoint (never the secrets)."""
    from sqlalchemy import func, select

    from core.webhooks import service
    from core.webhooks.models import WebhookDelivery

    crm = open_crm()
    with crm.db.session() as session:
        counts = {
            (endpoint_id, status): count
            for endpoint_id, status, count in session.execute(
                select(WebhookDelivery.endpoint_id, WebhookDelivery.status, func.count()).group_by(
                    WebhookDelivery.endpoint_id, WebhookDelivery.status
                )
            )
        }
        rows = [
            {
                **service.endpoint_data(e),
                "pending": counts.get((e.id, "pending"), 0),
                "failed": counts.get((e.id, "failed"), 0),
            }
            for e in service.list_endpoints(session)
        ]
    if fmt == "json":
        print_json(rows)
        return
    print_table(
        ["id", "url", "events", "active", "pending", "failed", "description"],
        [
            [
                r["id"],
                r["url"],
                ", ".join(r["events"]),
                r["active"],
                r["pending"],
                r["failed"],
                r["description"],
            ]
            for r in rows
        ],
    )


@webhooks.command()
@click.argument("endpoint_id", type=int)
@click.option("--url", default=None, help="A new URL.")
@click.option("--event", "events_", multiple=True, help="Replace the events; repeat for several.")
@click.option("--description", default=None, help="A new description.")
@click.option(
    "--active/--inactive",
    default=None,
    help="Resume or pause deliveries (paused ones wait, they are not dropped).",
)
def update(
    endpoint_id: int,
    url: str | None,
    events_: tuple[str, ...],
    description: str | None,
    active: bool | None,
) -> None:
    """Change an endpoint's URL, events, description or state."""
    from core.webhooks import service

    if url is None and not events_ and description is None and active is None:
        raise click.UsageError("give at least one of --url, --event, --description, --active")
    crm = open_crm()
    with crm.db.write() as session:
        endpoint = service.update_endpoint(
            session,
            crm,
            endpoint_id,
            url=url,
            events=list(events_) if events_ else None,
            description=description,
            active=active,
        )
        data = service.endpoint_data(endpoint)
    state = "active" if data["active"] else "inactive"
    click.echo(
        f"Updated webhook endpoint {endpoint_id}: {data['url']} ({', '.join(data['events'])}),"
        f" {state}"
    )


@webhooks.command()
@click.argument("endpoint_id", type=int)
def remove(endpoint_id: int) -> None:
    """Delete an endpoint and its deliveries (pending ones included)."""
    from core.webhooks import service

    crm = open_crm()
    with crm.db.write() as session:
        service.remove_endpoint(session, endpoint_id)
    click.echo(f"Removed webhook endpoint {endpoint_id}")


@webhooks.command("rotate-secret")
@click.argument("endpoint_id", type=int)
def rotate_secret(endpoint_id: int) -> None:
    """Give an endpoint a new signing secret, printed once; the old one stops at once."""
    from core.webhooks import service

    crm = open_crm()
    with crm.db.write() as session:
        secret = service.rotate_secret(session, endpoint_id)
    click.echo(f"New signing secret of endpoint {endpoint_id} (shown once): {secret}")


def _send_now(crm: Crm, delivery_id: int) -> None:
    """Try one delivery at once and say how it went; exit 1 unless it was delivered."""
    from core.webhooks import delivery as deliverer
    from core.webhooks import service

    deliverer.deliver_due(crm, ids=[delivery_id])
    with crm.db.session() as session:
        data = service.delivery_data(service.get_delivery(session, delivery_id))
    if data["status"] == "delivered":
        click.echo(
            f"Delivery {delivery_id} ({data['event']}): delivered,"
            f" HTTP {data['response_status']} in {data['duration_ms']} ms"
        )
        return
    when = f"; next attempt at {data['next_attempt_at']}" if data["next_attempt_at"] else ""
    raise click.ClickException(
        f"delivery {delivery_id} ({data['event']}) not delivered: {data['error']}"
        f" ({data['status']}, {data['attempts']} attempt(s){when})"
    )


@webhooks.command()
@click.argument("endpoint_id", type=int)
def ping(endpoint_id: int) -> None:
    """Send a test event (``ping``) to an endpoint now."""
    from core.webhooks import service

    crm = open_crm()
    with crm.db.write() as session:
        delivery_id = service.send_ping(session, crm, endpoint_id).id
    _send_now(crm, delivery_id)


@webhooks.command()
@click.option("--endpoint", "endpoint_id", type=int, default=None, help="Only this endpoint's.")
@click.option(
    "--status",
    type=click.Choice(["pending", "delivered", "failed"]),
    default=None,
    help="Only deliveries in this status.",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--before", "before_id", type=int, default=None, help="Only older than this id.")
@FORMAT_OPTION
def deliveries(
    endpoint_id: int | None, status: str | None, limit: int, before_id: int | None, fmt: str
) -> None:
    """Recent deliveries, newest first, with their attempts and last error."""
    from core.webhooks import service

    crm = open_crm()
    with crm.db.session() as session:
        if endpoint_id is not None:
            service.get_endpoint(session, endpoint_id)
        rows = [
            service.delivery_data(d)
            for d in service.list_deliveries(session, endpoint_id, status, limit, before_id)
        ]
    if fmt == "json":
        print_json(rows)
        return
    print_table(
        ["id", "endpoint", "event", "status", "attempts", "HTTP", "next attempt", "error"],
        [
            [
                r["id"],
                r["endpoint_id"],
                r["event"],
                r["status"],
                r["attempts"],
                r["response_status"],
                r["next_attempt_at"],
                r["error"],
            ]
            for r in rows
        ],
    )


@webhooks.command()
@click.argument("delivery_id", type=int)
def redeliver(delivery_id: int) -> None:
    """Send a delivery again now (a delivered or failed one as a new delivery)."""
    from core.webhooks import service

    crm = open_crm()
    with crm.db.write() as session:
        again = service.redeliver(session, delivery_id).id
    if again != delivery_id:
        click.echo(f"Delivery {delivery_id} queued again as delivery {again}")
    _send_now(crm, again)


def _summary(report: Any, pruned: int) -> str:
    text = (
        f"Delivered {report.delivered}, retrying {report.retrying}, failed {report.failed},"
        f" skipped {report.skipped}"
    )
    if pruned:
        text += f"; pruned {pruned} old delivered"
    if report.next_due is not None:
        text += f"; next due at {report.next_due.isoformat(timespec='seconds')}"
    return text


@webhooks.command()
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--loop", is_flag=True, help="Keep delivering until stopped (a worker).")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=30.0,
    show_default=True,
    help="With --loop: the longest wait between runs, in seconds.",
)
@FORMAT_OPTION
def deliver(limit: int, loop: bool, interval: float, fmt: str) -> None:
    """Send the deliveries that are due, and prune delivered ones past webhooks_keep_days.

    Run it from cron every minute, or once with --loop as a worker. Several may run at once.
    """
    import time

    from core.db import utcnow
    from core.webhooks import delivery as deliverer

    crm = open_crm()
    try:
        while True:
            pruned = deliverer.prune_delivered(crm)
            report = deliverer.deliver_due(crm, limit=limit)
            busy = report.delivered + report.retrying + report.failed + pruned
            if fmt == "json":
                print_json({**report.as_dict(), "pruned": pruned})
            elif busy or not loop:
                click.echo(_summary(report, pruned))
            if not loop:
                return
            wait = interval
            if report.next_due is not None:
                wait = min(interval, (report.next_due - utcnow()).total_seconds())
            time.sleep(max(wait, 0.0 if report.delivered else 0.5))
    except KeyboardInterrupt:
        click.echo("Stopped", err=True)
