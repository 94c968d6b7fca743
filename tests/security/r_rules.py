"""The data of the record-rule tests: two teams with known records in every module, so that
each list, count, total, report and dashboard figure has one exact right answer per user.

Team A (``alpha``) is ``owner`` and ``same_team`` (sales) with ``manager``; team B (``beta``) is
``other_team`` (sales) and :data:`RIVAL_BOSS` (a manager of team B, for what salespeople may
not see: reports, exports, analytics, sales performance). One customer belongs to nobody (the
shared pool every scope sees). Records are made through the REST API as the person who would
make them; alerts, which only the mining engine raises, are inserted as rows.

:data:`FIGURES` holds, by name, what team B must see; team A's records are chosen so that any
leak changes every one of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from tests.security.world import PASSWORD, World

RIVAL_BOSS = "rival.boss@example.com"
#: Names of team A's customers: a search for them by team B must find nothing.
A_NAMES = ("Alpha Anh Khoa", "Alpha Bich Ngoc", "Alpha Cuong Thinh")
B_NAMES = ("Beta Dung Tien", "Beta Em Hoa")
#: A customer of team A named as team B's first one: a duplicate team B must not be shown.
A_TWIN = "Beta Dung Tien"
POOL_NAME = "Pool Gia Bao"
#: Unit prices of the orders, by customer name (one order per price): team A's are large so
#: that a leak shows in every total.
ORDERS = {
    A_NAMES[0]: (9_000_000, 7_000_000),
    A_NAMES[1]: (5_000_000,),
    B_NAMES[0]: (110_000,),
    B_NAMES[1]: (230_000, 370_000),
}
#: Open deals: (customer, title, expected revenue, probability).
DEALS = (
    (A_NAMES[0], "Alpha big deal", 8_000_000, 50),
    (A_NAMES[2], "Alpha other deal", 4_000_000, 25),
    (B_NAMES[0], "Beta first deal", 300_000, 40),
    (B_NAMES[1], "Beta second deal", 200_000, 10),
)


@dataclass
class RulesWorld:
    """The world of the record-rule tests: the access-matrix personas and the ids made here."""

    world: World
    customers: dict[str, int] = field(default_factory=dict)
    orders: dict[str, list[int]] = field(default_factory=dict)
    deals: dict[str, int] = field(default_factory=dict)
    tickets: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    rival_boss_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def api(self, persona: str) -> Any:
        """An API client of ``persona`` (``rival_boss`` too)."""
        if persona == "rival_boss":
            from fastapi.testclient import TestClient

            return TestClient(
                self.world.app,
                base_url="http://testserver",
                headers={"Authorization": f"Bearer {self.rival_boss_token}"},
            )
        return self.world.api(persona)

    def ui(self, persona: str) -> Any:
        """A signed-in browser of ``persona`` (``rival_boss`` too)."""
        if persona == "rival_boss":
            if "rival_boss_ui" not in self.extra:
                from tests.security.r_kit import browser

                self.extra["rival_boss_ui"] = browser(self.world.app, RIVAL_BOSS, PASSWORD)
            return self.extra["rival_boss_ui"]
        return self.world.ui(persona)


def _ok(response: Any, expected: int = 201) -> Any:
    assert response.status_code == expected, (response.request.url, response.text[:500])
    return response.json()


def _at(days: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


def build(world: World) -> RulesWorld:
    """Make the records of both teams (see the module docstring)."""
    from core import auth, users
    from plugins.analytical.refresh import run_steps
    from plugins.smart_sales.models import Alert
    from tests.plugins.smart_sales.helpers import add_alert

    rules = RulesWorld(world)
    with world.crm.db.write() as session:
        boss = users.create_user(session, RIVAL_BOSS, "Rita's Boss", PASSWORD, ["manager"])
        users.set_team(session, boss, users.get_team(session, "beta"))
        rules.rival_boss_token = auth.create_token(session, boss, "rules").secret
        rules.extra["rival_boss_id"] = boss.id
    admin = world.api("admin")
    product = _ok(
        admin.post(
            "/api/operational/products",
            json={"sku": "RULE-1", "name": "Rule product", "price_minor": 1_000},
        )
    )["id"]
    makers = {name: "owner" for name in A_NAMES} | {name: "other_team" for name in B_NAMES}
    for name, persona in makers.items():
        made = _ok(
            world.api(persona).post(
                "/api/customers",
                json={
                    "kind": "person",
                    "display_name": name,
                    "identities": [
                        {"channel": "email", "value": f"{name.split()[1].lower()}@example.org"}
                    ],
                },
            )
        )
        rules.customers[name] = made["id"]
    twin = world.api("owner").post(
        "/api/customers", json={"kind": "person", "display_name": A_TWIN}
    )
    rules.customers["twin"] = _ok(twin)["id"]
    pool = _ok(admin.post("/api/customers", json={"kind": "person", "display_name": POOL_NAME}))
    version = pool["version"]
    # the administrator gives it to nobody: the shared pool
    unowned = admin.patch(
        f"/api/customers/{pool['id']}", json={"version": version, "owner_id": None}
    )
    assert unowned.status_code == 200 and unowned.json()["owner_id"] is None, unowned.text
    rules.customers[POOL_NAME] = pool["id"]

    for name, prices in ORDERS.items():
        client = world.api(makers[name])
        rules.orders[name] = [
            _ok(
                client.post(
                    "/api/operational/orders",
                    json={
                        "customer_id": rules.customers[name],
                        "lines": [
                            {"product_id": product, "quantity": 1, "unit_price_minor": price}
                        ],
                    },
                )
            )["id"]
            for price in prices
        ]
    for name, title, revenue, probability in DEALS:
        rules.deals[title] = _ok(
            world.api(makers[name]).post(
                "/api/operational/opportunities",
                json={
                    "customer_id": rules.customers[name],
                    "title": title,
                    "expected_revenue_minor": revenue,
                    "probability": probability,
                },
            )
        )["id"]
    for name, subject in (
        (A_NAMES[0], "Alpha printer"),
        (A_NAMES[1], "Alpha invoice"),
        (B_NAMES[0], "Beta delivery"),
    ):
        rules.tickets[subject] = _ok(
            admin.post(
                "/api/operational/tickets",
                json={"customer_id": rules.customers[name], "subject": subject},
            )
        )["id"]
    # activities: each seller has one overdue and one coming
    for persona, name in (("owner", A_NAMES[0]), ("other_team", B_NAMES[0])):
        for days, subject in ((-2, "late call"), (5, "next call")):
            _ok(
                world.api(persona).post(
                    "/api/operational/activities",
                    json={
                        "kind": "call",
                        "subject": f"{name} {subject}",
                        "customer_id": rules.customers[name],
                        "due_at": _at(days),
                    },
                )
            )
    # interactions: three on team A's customers, two on team B's
    for persona, name, count in (("owner", A_NAMES[0], 3), ("other_team", B_NAMES[1], 2)):
        for n in range(count):
            _ok(
                world.api(persona).post(
                    "/api/operational/interactions",
                    json={
                        "customer_id": rules.customers[name],
                        "kind": "call",
                        "channel": "phone",
                        "subject": f"{name} call {n}",
                        "occurred_at": _at(-1),
                    },
                )
            )
    # notes: the other seller of team A mentions owner; team B writes on its own customer
    same_team_id = world.personas["same_team"].user_id
    owner_id = world.personas["owner"].user_id
    rival_id = world.personas["other_team"].user_id
    for persona, name, text in (
        ("owner", A_NAMES[0], "Alpha note one"),
        ("same_team", A_NAMES[0], f"Alpha note for @[Olga Owner](user:{owner_id})"),
        ("other_team", B_NAMES[0], "Beta note one"),
    ):
        _ok(
            world.api(persona).post(
                "/api/collaborative/messages",
                json={
                    "record_type": "customer",
                    "record_id": rules.customers[name],
                    "body": text,
                    "kind": "note",
                },
            )
        )
    # team B's manager mentions other_team on a customer of theirs (one notification); team A
    # mentions other_team on its own customer, which other_team may not see (none)
    _ok(
        rules.api("rival_boss").post(
            "/api/collaborative/messages",
            json={
                "record_type": "customer",
                "record_id": rules.customers[B_NAMES[1]],
                "body": f"Beta look @[Rita Rival](user:{rival_id})",
                "kind": "note",
            },
        )
    )
    _ok(
        world.api("same_team").post(
            "/api/collaborative/messages",
            json={
                "record_type": "customer",
                "record_id": rules.customers[A_NAMES[1]],
                "body": f"Alpha look @[Rita Rival](user:{rival_id})",
                "kind": "note",
            },
        )
    )
    rules.extra["ids"] = {"owner": owner_id, "same_team": same_team_id, "rival": rival_id}
    # alerts: three open of owner's (team A's customers), two open and one acted of team B's
    with world.crm.db.write() as session:
        for key, name, owner, state, value in (
            ("a1", A_NAMES[0], owner_id, "new", 900_000),
            ("a2", A_NAMES[1], owner_id, "seen", 800_000),
            ("a3", A_NAMES[2], owner_id, "new", 700_000),
            ("b1", B_NAMES[0], rival_id, "new", 30_000),
            ("b2", B_NAMES[1], rival_id, "seen", 20_000),
            ("b3", B_NAMES[1], rival_id, "acted", 10_000),
        ):
            rules.alerts[key] = add_alert(
                session,
                customer_id=rules.customers[name],
                owner_id=owner,
                state=state,
                expected_value_minor=value,
                product_id=product if key != "b3" else None,
                kind="cross_sell" if key != "b3" else "churn",
            )
        assert session.query(Alert).count() == 6
    for _ in run_steps(world.crm, dt.datetime.now(dt.UTC).date()):
        pass  # every analytics snapshot, as ``crm analytics refresh`` makes them
    return rules
