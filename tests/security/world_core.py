"""The core's part of the access-matrix world: customers, an identity, a token, a webhook
endpoint with a delivery, and the inputs of the core's routes (see ``tests/security/world.py``)."""

from __future__ import annotations

from typing import Any

from tests.security.world import EVERYONE, MARKER, MINE, OTHERS, PASSWORD, PEOPLE, World

#: Where pings are sent: a loopback port nothing listens on (refused at once, no network).
DEAD_URL = "http://127.0.0.1:9/hook"


def _customer(world: World, persona: str, name: str, **values: Any) -> int:
    """A customer created through the customer service as ``persona``, who owns it."""
    from core import audit
    from core.customers import service

    who = world.personas[persona]
    data = {"kind": "person", "display_name": name, "owner_id": who.user_id, **values}
    with world.crm.db.write() as session, audit.acting_as(audit.Actor(who.email, who.user_id)):
        identities = [("email", f"{persona}-{name.split()[0].lower()}@example.com")]
        return service.create(session, world.crm, data, identities, [persona]).id


def build(world: World) -> None:
    """Owner's customers (one to merge away), other_team's customer, a spare API token, an
    attestation item, a webhook endpoint with a delivery; the core routes' parameters and
    bodies."""
    from core import auth, checks, users
    from core.customers.models import Customer
    from core.webhooks import declared_events, service

    crm = world.crm
    world.customer_id = _customer(
        world,
        "owner",
        f"{MARKER} Alpha",
        given_name=f"Given {MARKER}",
        family_name=f"Family {MARKER}",
        address=f"1 {MARKER} street",
        external_ref=f"ref-{MARKER}",
        source_channel="shop",
    )
    duplicate = _customer(world, "owner", f"Alpha {MARKER} twin", address=f"2 {MARKER} street")
    world.other_customer_id = _customer(
        world, "other_team", f"Beta {MINE}", address=f"3 {MINE} street"
    )
    with crm.db.session() as session:
        identity_id = session.get(Customer, world.customer_id).identities[0].id
        other_identity = session.get(Customer, world.other_customer_id).identities[0].id

    world.param("customer_id", world.customer_id)
    world.param("customer_id", world.other_customer_id, OTHERS)
    world.param("identity_id", identity_id, prefix="/api/customers/")
    world.param("identity_id", other_identity, OTHERS, prefix="/api/customers/")
    world.record("customer", world.customer_id)
    world.record("customer", world.other_customer_id, OTHERS)
    # finding a customer by an identity or reference is reading it
    world.query("/api/customers/lookup", "email=owner-zqxleak@example.com")
    world.query("/api/customers/lookup", f"external_ref=ref-{MARKER}")
    world.query("/api/customers/lookup", "email=other_team-beta@example.com", OTHERS)

    world.body("POST", "/api/auth/login", {"email": PEOPLE["owner"][0], "password": PASSWORD})
    world.body("POST", "/login", {"email": PEOPLE["owner"][0], "password": PASSWORD, "next": "/"})
    world.body("POST", "/account/language", {"language": "en"})
    world.body(
        "POST",
        "/api/customers",
        {"display_name": f"New {MARKER}", "kind": "person", "address": MARKER},
    )
    world.body("PATCH", "/api/customers/{customer_id}", {"version": 1, "address": f"{MARKER} 9"})
    world.body(
        "POST",
        "/api/customers/{customer_id}/identities",
        {"channel": "email", "value": "added-zqx@example.com"},
    )
    world.body("POST", "/api/customers/{customer_id}/merge", {"other_id": duplicate})
    world.body("POST", "/ui/customer/new", {"kind": "person", "display_name": f"Made {MARKER}"})
    world.body(
        "POST",
        "/ui/customer/{record_id}/edit",
        {"kind": "person", "display_name": f"Edited {MARKER}", "version": "1"},
    )

    # The admin area: a spare token, a user to change, an attestation item, a module.
    with crm.db.write() as session:
        owner = users.get_user(session, PEOPLE["owner"][0])
        spare_token = auth.create_token(session, owner, "spare").id
    world.param("token_id", spare_token, EVERYONE)
    world.param("user_id", world.personas["same_team"].user_id, EVERYONE)
    world.body("POST", "/admin/users/{user_id:int}", {"roles": "sales", "team": "alpha"})
    world.body(
        "POST", "/admin/users", {"email": "new-zqx@example.com", "name": MARKER, "roles": "sales"}
    )
    world.body("POST", "/admin/tokens", {"email": PEOPLE["owner"][0], "name": "another"})
    items, _ = checks.collect_items(crm)
    attestation = next(item.id for _, item in items if item.is_attestation)
    world.param("check_id", attestation, EVERYONE)
    world.body("POST", "/admin/checklist/{check_id}/attest", {"note": "checked with the team"})
    # enabling an enabled module changes nothing: safe for the administrator to really do
    world.param("name", "operational", EVERYONE, prefix="/admin/modules/")
    world.param("operation", "enable", EVERYONE, prefix="/admin/modules/")

    event = sorted(name for name in declared_events(crm) if name.startswith("customer."))[0]
    with crm.db.write() as session:
        endpoint, _ = service.add_endpoint(session, crm, DEAD_URL, [event], f"Hook {MARKER}")
        delivery = service.send_ping(session, crm, endpoint.id).id
        endpoint_id = endpoint.id
    world.param("endpoint_id", endpoint_id, EVERYONE)
    world.param("delivery_id", delivery, EVERYONE)
    form = {"url": DEAD_URL, "events": event, "description": f"Hook {MARKER}"}
    world.body("POST", "/admin/webhooks", form)
    world.body("POST", "/admin/webhooks/{endpoint_id}", form)
    world.body("POST", "/admin/webhooks/{endpoint_id}/active", {"active": "0"})
