"""The smart-selling module's part of the access-matrix world (see ``tests/security/world.py``).

Orders go through the operational API as the customers' owners: three customers of ``owner``
buy a kettle and its filter together, ``owner``'s main customer and ``other_team``'s customer
buy the kettle alone. A mining run (by the manager, through the API) finds "kettle -> filter"
and raises a cross-sell alert for each of those two customers; the alert's title names its
customer, so ``owner``'s carries :data:`MARKER` and ``other_team``'s :data:`MINE`. The manager
then mutes the rule "filter -> kettle" (it raises nothing here), so that unmuting has
something to do.

Products, rules and runs are shared by design (whoever holds their read permission sees them
all): they carry neither marker.
"""

from __future__ import annotations

from typing import Any

from tests.security.world import EVERYONE, MARKER, OTHERS, World
from tests.security.world_collaborative import chatter_messages

API = "/api/smart_sales"
PAGES = "/smart_sales"
ALERT = "smart_sales.alert"
#: The mining parameters of the world's run (the world's few baskets need a low support).
MINING = {"min_support": 0.2, "min_confidence": 0.1, "min_lift": 0}


def _json(response: Any, expected: int = 201) -> Any:
    """The JSON body of ``response``, which must have the ``expected`` status."""
    assert response.status_code == expected, (response.request.url, response.text)
    return response.json()


def _products(world: World) -> tuple[int, int]:
    """A kettle and its filter, created by the administrator through the API."""
    admin = world.api("admin")
    made = [
        _json(
            admin.post(
                "/api/operational/products",
                json={"sku": sku, "name": name, "price_minor": price},
            )
        )["id"]
        for sku, name, price in (
            ("MATRIX-KETTLE", "Matrix kettle", 400_000),
            ("MATRIX-FILTER", "Matrix filter", 90_000),
        )
    ]
    return made[0], made[1]


def _order(world: World, persona: str, customer_id: int, products: list[int]) -> None:
    lines = [{"product_id": product} for product in products]
    _json(
        world.api(persona).post(
            "/api/operational/orders", json={"customer_id": customer_id, "lines": lines}
        )
    )


def _orders(world: World, kettle: int, filter_: int) -> None:
    """The baskets the run mines: kettle and filter together three times, the kettle alone
    for each persona's main customer."""
    owner = world.api("owner")
    for number in range(3):
        customer = _json(
            owner.post(
                "/api/customers",
                json={"display_name": f"Basket {number} {MARKER}", "kind": "person"},
            )
        )["id"]
        _order(world, "owner", customer, [kettle, filter_])
    _order(world, "owner", world.customer_id, [kettle])
    _order(world, "other_team", world.other_customer_id, [kettle])


def _alert_of(world: World, persona: str, customer_id: int) -> dict[str, Any]:
    """``persona``'s open alert for ``customer_id``."""
    items = _json(world.api(persona).get(f"{API}/alerts"), 200)["items"]
    found = [item for item in items if item["customer_id"] == customer_id]
    assert found, (persona, customer_id, items)
    return found[0]


def _rules(world: World, kettle: int, filter_: int) -> tuple[int, str, int]:
    """Mine (as the manager), mute "filter -> kettle"; the run's id and the muted rule's key
    and id."""
    manager = world.api("manager")
    run = _json(manager.post(f"{API}/runs", json={**MINING, "raise_alerts": True}))
    rules = _json(manager.get(f"{API}/rules"), 200)["rules"]
    muted = next(
        rule
        for rule in rules
        if rule["antecedent_ids"] == [filter_] and rule["consequent_ids"] == [kettle]
    )
    _json(manager.post(f"{API}/rules/{muted['key']}/mute", json={"reason": "Seasonal"}), 200)
    return run["id"], muted["key"], muted["id"]


def build(world: World) -> None:
    """Records of every kind the module's routes take, with their route inputs."""
    kettle, filter_ = _products(world)
    _orders(world, kettle, filter_)
    run_id, key, rule_id = _rules(world, kettle, filter_)

    mine = _alert_of(world, "owner", world.customer_id)
    theirs = _alert_of(world, "other_team", world.other_customer_id)
    world.param("alert_id", mine["id"])
    for resource in ("alert", ALERT):
        world.record(resource, mine["id"])
        world.record(resource, theirs["id"], OTHERS)
    chatter_messages(world, [ALERT])
    world.param("run_id", run_id, EVERYONE, prefix=f"{API}/runs/")
    world.param("key", key, EVERYONE, prefix=f"{API}/rules/")
    world.param("rule_id", rule_id, EVERYONE, prefix=f"{PAGES}/rules/")

    version = mine["version"]
    dismissal = {"reason": "bad_timing", "note": f"{MARKER} call back in spring"}
    world.body("POST", f"{API}/alerts/{{alert_id}}/act", {"version": version})
    world.body("POST", f"{API}/alerts/{{alert_id}}/dismiss", {**dismissal, "version": version})
    world.body("POST", f"{PAGES}/alerts/{{alert_id}}/act", {"version": str(version)})
    world.body(
        "POST", f"{PAGES}/alerts/{{alert_id}}/dismiss", {**dismissal, "version": str(version)}
    )
    world.body("POST", f"{API}/rules/{{key}}/mute", {"reason": "Out of stock"})
    world.body("POST", f"{PAGES}/rules/{{rule_id}}/mute", {"reason": "Out of stock"})
    world.body("POST", f"{API}/runs", {**MINING, "raise_alerts": True})
    world.body(
        "POST",
        f"{PAGES}/rules/mine",
        {"min_support": "20", "min_confidence": "10", "min_lift": "0", "raise_alerts": "yes"},
    )
