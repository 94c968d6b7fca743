"""The operational module's part of the access-matrix world (see ``tests/security/world.py``).

Records are made through the module's REST API as the persona who would make them (``owner``
for their deals, orders, activities and interactions; the administrator for what a salesperson
may not create: products, templates, tickets assigned to ``owner``), or through the module's
services where no route makes them as ``owner`` (mailings of ``owner``, the survey and
unsubscribe links sent to customers). ``owner``'s records carry :data:`MARKER` in every text
field, ``other_team``'s :data:`MINE`. Products, mail templates, stages and SLA policies are
shared by design (no record rule): they carry neither and everyone may see them.

The links sent to customers (survey, unsubscribe) are for records without the marker: their
pages show the survey's subject and the recipient's address to whoever holds the link, which is
the customer by design, so the leak check (``other_team`` as a link holder) stays meaningful.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.security.world import EVERYONE, MARKER, MINE, OTHERS, World

API = "/api/operational"
PAGES = "/operational/"


def _json(response: Any, expected: int = 201) -> dict[str, Any]:
    """The JSON body of ``response``, which must have the ``expected`` status."""
    assert response.status_code == expected, (response.request.url, response.text)
    return response.json()


def _later(days: int) -> str:
    """An ISO 8601 UTC time ``days`` from now."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


def _deal_records(
    world: World, persona: str, customer_id: int, product_id: int, text: str
) -> dict[str, Any]:
    """An opportunity, an order (of ``product_id``), an activity and an interaction of
    ``persona`` for ``customer_id``, every text field holding ``text``; by kind."""
    api = world.api(persona)
    deal = _json(
        api.post(
            f"{API}/opportunities",
            json={"customer_id": customer_id, "title": f"{text} deal"},
        )
    )
    order = _json(
        api.post(
            f"{API}/orders",
            json={
                "customer_id": customer_id,
                "ref": f"{text}-{persona}",
                "channel": f"{text} shop",
                "lines": [{"product_id": product_id, "quantity": 2}],
            },
        )
    )
    activity = _json(
        api.post(
            f"{API}/activities",
            json={
                "kind": "call",
                "subject": f"{text} call",
                "note": f"{text} note",
                "customer_id": customer_id,
                "opportunity_id": deal["id"],
                "due_at": _later(7),
            },
        )
    )
    interaction = _json(
        api.post(
            f"{API}/interactions",
            json={
                "customer_id": customer_id,
                "kind": "meeting",
                "channel": "in_person",
                "subject": f"{text} meeting",
                "body": f"{text} minutes",
                "opportunity_id": deal["id"],
            },
        )
    )
    return {
        "opportunity": deal,
        "order": order,
        "activity": activity,
        "interaction": interaction,
    }


def _ticket(world: World, customer_id: int, assignee: str, text: str) -> dict[str, Any]:
    """A ticket for ``customer_id`` assigned to ``assignee``, opened by the administrator."""
    persona = world.personas[assignee]
    return _json(
        world.api("admin").post(
            f"{API}/tickets",
            json={
                "customer_id": customer_id,
                "subject": f"{text} printer jam",
                "description": f"{text} details",
                "priority": "high",
                "assignee_id": persona.user_id,
            },
        )
    )


def _mailing(world: World, persona: str, template_id: int, text: str, customer_id: int) -> Any:
    """A draft mailing created by ``persona`` (through the service: salespeople may not create
    mailings, and a mailing belongs to its creator), its audience ``customer_id``."""
    from plugins.operational import mailings

    with world.crm.db.write() as session:
        mailing = mailings.create_mailing(
            session,
            {
                "name": f"{text} newsletter",
                "template_id": template_id,
                "audience": {"customer_ids": [customer_id]},
            },
            world.personas[persona].user_id,
        )
        return mailing.id


def _scheduled_mailing(world: World, template_id: int) -> tuple[int, str]:
    """A mailing of ``owner`` scheduled for their customer, and an unsubscribe link token.

    The token is signed for a neutral address: the page shows the address to whoever holds
    the link (the recipient, by design).
    """
    from plugins.operational import mailings
    from plugins.operational.models import Mailing, MailingRecipient

    mailing_id = _mailing(world, "owner", template_id, MARKER, world.customer_id)
    with world.crm.db.write() as session:
        mailing = session.get(Mailing, mailing_id)
        mailings.schedule(session, world.crm, mailing, mailing.version, None, world.user("owner"))
        recipient = session.query(MailingRecipient).filter_by(mailing_id=mailing_id).first()
        recipient_id = recipient.id if recipient is not None else mailing_id
    token = mailings.unsubscribe_token(
        world.crm.settings.secret_key, recipient_id, "reader@example.org"
    )
    return mailing_id, token


def _survey_token(world: World) -> str:
    """The link token of the survey of a resolved ticket of ``owner``'s customer (a neutral
    subject: the survey page shows it to the link holder)."""
    ticket = _json(
        world.api("admin").post(
            f"{API}/tickets",
            json={
                "customer_id": world.customer_id,
                "subject": "Delivery question",
                "assignee_id": world.personas["owner"].user_id,
            },
        )
    )
    resolved = _json(
        world.api("admin").post(
            f"{API}/tickets/{ticket['id']}/resolve", json={"version": ticket["version"]}
        ),
        200,
    )
    return resolved["survey_url"].rsplit("/", 1)[-1]


def _system_interaction(world: World) -> None:
    """An inbound reply from ``owner``'s customer, logged by the mail gateway (no user): it
    follows its customer, it is not in the pool of unowned records everyone sees."""
    from core.customers.models import CustomerIdentity

    with world.crm.db.session() as session:
        email = (
            session.query(CustomerIdentity.value)
            .filter_by(customer_id=world.customer_id, channel="email")
            .scalar()
        )
    if email is None:
        return
    _json(
        world.api("admin").post(
            f"{API}/replies",
            json={"from": email, "subject": f"{MARKER} reply", "text": f"{MARKER} reply text"},
        )
    )


def build(world: World) -> None:
    """Records of every kind the module's routes take, with their route inputs."""
    admin = world.api("admin")
    owner_customer, other_customer = world.customer_id, world.other_customer_id

    product = _json(
        admin.post(
            f"{API}/products",
            json={"sku": "MATRIX-1", "name": "Matrix widget", "price_minor": 150_000},
        )
    )
    world.param("product_id", product["id"], EVERYONE, prefix=API)
    world.record("product", product["id"], EVERYONE)

    mine = _deal_records(world, "owner", owner_customer, product["id"], MARKER)
    theirs = _deal_records(world, "other_team", other_customer, product["id"], MINE)
    for kind, id_name in (
        ("opportunity", "opportunity_id"),
        ("order", "order_id"),
        ("activity", "activity_id"),
    ):
        world.param(id_name, mine[kind]["id"], prefix=API)
    for kind in ("opportunity", "order", "activity", "interaction"):
        world.record(kind, mine[kind]["id"])
        world.record(kind, theirs[kind]["id"], OTHERS)
    for kind in ("opportunity", "order"):
        world.record(f"operational.{kind}", mine[kind]["id"])
        world.record(f"operational.{kind}", theirs[kind]["id"], OTHERS)

    ticket = _ticket(world, owner_customer, "owner", MARKER)
    other_ticket = _ticket(world, other_customer, "other_team", MINE)
    world.param("ticket_id", ticket["id"], prefix=API)
    for kind in ("ticket", "operational.ticket"):
        world.record(kind, ticket["id"])
        world.record(kind, other_ticket["id"], OTHERS)
    world.param("priority", "high", EVERYONE, prefix=f"{API}/sla-policies/")

    template = _json(
        admin.post(
            f"{API}/mail-templates",
            json={
                "name": "Matrix template",
                "subject": "News for {{ display_name }}",
                "body": "Hello {{ given_name }}\n{{ unsubscribe_url }}",
            },
        )
    )
    world.param("template_id", template["id"], EVERYONE, prefix=API)
    world.record("mail_template", template["id"], EVERYONE)
    draft = _mailing(world, "owner", template["id"], MARKER, owner_customer)
    other_draft = _mailing(world, "other_team", template["id"], MINE, other_customer)
    # a scheduled one too: its recipients, and the "schedule" action refused (422) on it
    scheduled, unsubscribe = _scheduled_mailing(world, template["id"])
    for mailing_id in (draft, scheduled):
        world.param("mailing_id", mailing_id, prefix=API)
        world.record("mailing", mailing_id)
    world.record("mailing", other_draft, OTHERS)

    world.param("token", unsubscribe, EVERYONE, prefix=f"{PAGES}unsubscribe/")
    world.param("token", _survey_token(world), EVERYONE, prefix=f"{PAGES}survey/")
    for page in ("unsubscribe/", "survey/"):  # a forged link: 404, never a 500
        world.param("token", "WzEsImFAYi5jIl0.forged", EVERYONE, prefix=PAGES + page)
    _system_interaction(world)

    _bodies(world, product, mine, ticket, template["id"])


def _bodies(
    world: World,
    product: dict[str, Any],
    mine: dict[str, Any],
    ticket: dict[str, Any],
    template_id: int,
) -> None:
    """Valid bodies for the module's write routes (refused callers send the same)."""
    customer_id = world.customer_id
    deal, order = mine["opportunity"], mine["order"]
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/products"): {"sku": "MATRIX-NEW", "name": "Matrix gadget"},
        ("PATCH", "/products/{product_id}"): {
            "version": product["version"],
            "name": "Matrix widget v2",
        },
        ("POST", "/orders"): {
            "customer_id": customer_id,
            "lines": [{"product_id": product["id"], "quantity": 1}],
        },
        ("PATCH", "/orders/{order_id}"): {"version": order["version"], "status": "paid"},
        ("POST", "/opportunities"): {"customer_id": customer_id, "title": "New matrix deal"},
        ("PATCH", "/opportunities/{opportunity_id}"): {
            "version": deal["version"],
            "title": "Renamed matrix deal",
        },
        ("POST", "/activities"): {
            "kind": "todo",
            "subject": "Matrix follow-up",
            "customer_id": customer_id,
            "due_at": _later(3),
        },
        ("POST", "/activities/{activity_id}/complete"): {"outcome": "Matrix outcome"},
        ("POST", "/interactions"): {
            "customer_id": customer_id,
            "kind": "call",
            "channel": "phone",
            "subject": "Matrix call",
        },
        ("POST", "/mail-templates"): {
            "name": "Matrix template 2",
            "subject": "Hi {{ display_name }}",
            "body": "Hello",
        },
        ("PATCH", "/mail-templates/{template_id}"): {"version": 1, "subject": "Hi again"},
        ("POST", "/mail-templates/{template_id}/preview"): {"customer_id": customer_id},
        ("POST", "/mailings"): {"name": "Matrix mailing", "template_id": template_id},
        ("PATCH", "/mailings/{mailing_id}"): {"version": 1, "name": "Matrix mailing 2"},
        ("POST", "/mailings/{mailing_id}/schedule"): {"version": 1, "scheduled_at": _later(1)},
        ("POST", "/mailings/{mailing_id}/unschedule"): {"version": 1},
        ("POST", "/replies"): {"from": "someone@example.org", "subject": "Hi", "text": "Hello"},
        ("POST", "/tickets"): {"customer_id": customer_id, "subject": "Matrix ticket"},
        ("PATCH", "/tickets/{ticket_id}"): {"version": ticket["version"], "priority": "urgent"},
        ("POST", "/tickets/{ticket_id}/respond"): {
            "version": ticket["version"],
            "body": "Matrix answer",
        },
        ("POST", "/tickets/{ticket_id}/resolve"): {"version": ticket["version"]},
        ("PUT", "/sla-policies/{priority}"): {
            "first_response_minutes": 30,
            "resolution_minutes": 240,
        },
    }
    for (method, path), payload in bodies.items():
        world.body(method, API + path, payload)
    world.body("POST", "/operational/survey/{token}", {"rating": "5", "comment": "Quick help"})
    world.body("POST", "/operational/unsubscribe/{token}", {})
