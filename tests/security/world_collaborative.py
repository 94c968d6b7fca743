"""The collaborative module's part of the access-matrix world (see ``tests/security/world.py``).

Records are made through the module's REST API as the persona who would make them: ``owner``
writes on their customer, hands a customer of theirs to a third team and links a partner to
it; ``same_team`` answers, so ``owner`` gets a notification; ``other_team`` does the same on
their own customer with :data:`MINE`. The administrator sets up what only managers may: the
third team and its member, partner sign-ins and a share.

Partners, their contacts and departments are shared by design (whoever holds their read
permission sees all of them): they carry neither marker. Hand-offs, links, messages,
notifications and shares follow the record they are about, and carry :data:`MARKER` when it
is ``owner``'s.

Some records are seen by more personas than may change them: only a message's author (or a
moderator) edits it, only the receiving team (or a team manager) decides on a hand-off and only
its creator cancels it; those personas get 403 (``acting``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.security.world import EVERYONE, MARKER, MINE, OTHERS, SEEING, World

API = "/api/collaborative"
PAGES = "/collaborative"
MODERATE = "collaborative.message:moderate"
#: Who decides on a hand-off to the third team: its member (the administrator) and managers.
DECIDERS = frozenset({"manager", "admin"})


def _json(response: Any, expected: int = 201) -> Any:
    """The JSON body of ``response``, which must have the ``expected`` status."""
    assert response.status_code == expected, (response.request.url, response.text)
    return response.json()


def _customer(world: World, persona: str, name: str) -> int:
    """A customer created through the API by ``persona``, who owns it."""
    return _json(
        world.api(persona).post("/api/customers", json={"display_name": name, "kind": "person"})
    )["id"]


def _message(
    world: World, persona: str, record_type: str, record_id: int, text: str, **extra: Any
) -> dict[str, Any]:
    """A comment of ``persona`` on a record, through the API."""
    payload = {
        "record_type": record_type,
        "record_id": record_id,
        "body": text,
        "kind": "comment",
        **extra,
    }
    return _json(world.api(persona).post(f"{API}/messages", json=payload))


def _third_team(world: World) -> int:
    """A third department (the hand-offs' receiving team) whose only member is the
    administrator: nobody of team A or B sees what is handed to it through it."""
    from core import users

    with world.crm.db.write() as session:
        team_id = users.add_team(session, "gamma", "Team C").id
    admin = world.api("admin")
    _json(
        admin.put(f"{API}/teams/{team_id}", json={"kind": "service", "description": "Third line"}),
        200,
    )
    member = {"user_id": world.personas["admin"].user_id, "role": "member"}
    _json(admin.post(f"{API}/teams/{team_id}/members", json=member))
    return team_id


def _teams(world: World, team_id: int) -> None:
    """Departments: the third team and its member (by the paths of both routers)."""
    admin_id = world.personas["admin"].user_id
    for prefix in (f"{API}/teams/", f"{PAGES}/teams/"):
        world.param("team_id", team_id, EVERYONE, prefix=prefix)
        world.param("user_id", admin_id, EVERYONE, prefix=prefix)
    world.record("department", team_id, EVERYONE)
    profile = {"kind": "service", "description": "Third line support"}
    manager_id = world.personas["manager"].user_id
    world.body("PUT", f"{API}/teams/{{team_id}}", profile)
    world.body("POST", f"{API}/teams/{{team_id}}/members", {"user_id": manager_id})
    world.body("POST", f"{PAGES}/teams/{{team_id}}", {**profile, "lead_id": ""})
    world.body(
        "POST", f"{PAGES}/teams/{{team_id}}/members", {"user_id": str(manager_id), "role": "member"}
    )
    alpha = world.team_ids["alpha"]
    world.body("PUT", f"{API}/account-teams/{{customer_id}}", {"team_id": alpha})


def _messages(world: World) -> None:
    """A thread on each persona's customer, a notification for each, and the bodies."""
    owner_id = world.personas["owner"].user_id
    other_id = world.personas["other_team"].user_id
    first = _message(world, "owner", "customer", world.customer_id, f"{MARKER} first note")
    _message(
        world,
        "same_team",
        "customer",
        world.customer_id,
        f"{MARKER} answer",
        parent_id=first["id"],
        mentions=[f"user:{owner_id}"],
    )
    theirs = _message(world, "other_team", "customer", world.other_customer_id, f"{MINE} note")
    _message(
        world,
        "admin",
        "customer",
        world.other_customer_id,
        f"{MINE} question",
        parent_id=theirs["id"],
        mentions=[f"user:{other_id}"],
    )
    may_change = {"owner", *(p for p in SEEING if MODERATE in world.personas[p].permissions)}
    world.param("message_id", first["id"], prefix=f"{API}/messages/", acting=may_change)

    notifications = _json(world.api("owner").get(f"{API}/notifications"), 200)["items"]
    assert notifications, "owner was told nothing"
    world.param("notification_id", notifications[0]["id"], {"owner"})

    customer = {"record_type": "customer", "record_id": world.customer_id}
    world.body(
        "POST",
        f"{API}/messages",
        {**customer, "body": f"{MARKER} more", "kind": "comment"},
        SEEING,
    )
    world.body(
        "PATCH", f"{API}/messages/{{message_id}}", {"body": f"{MARKER} edited", "version": 1}
    )
    chatter = f"{PAGES}/chatter/{{record_type}}/{{record_id:int}}/messages"
    world.body("POST", chatter, {"body": f"{MARKER} from the panel", "kind": "comment"})
    world.body(
        "POST",
        f"{chatter}/{{message_id:int}}/edit",
        {"body": f"{MARKER} edited in the panel", "version": "1"},
    )
    world.body("PUT", f"{API}/preferences", {"in_app": True, "email": "digest"})
    world.body("POST", f"{PAGES}/preferences", {"in_app": "1", "email": "digest"})


def chatter_messages(world: World, record_types: Iterable[str]) -> None:
    """A message on every registered record of ``record_types``, as ``message_id`` of the
    conversation panel's routes of that record (a message belongs to one record: the panel
    of another answers 404).

    Written by ``owner`` on records team A sees (with :data:`MARKER`), by ``other_team`` on
    theirs (with :data:`MINE`), and by the administrator on records both see (neutral)."""
    for record_type in record_types:
        for ref in world.records.get(record_type, []):
            visible = ref.visible_to
            if "other_team" not in visible:
                author, text = "owner", f"{MARKER} panel note"
            elif "owner" not in visible:
                author, text = "other_team", f"{MINE} panel note"
            else:
                author, text = "admin", "Panel note"
            posted = _message(world, author, record_type, int(ref.value), text)
            moderators = {p for p in visible if MODERATE in world.personas[p].permissions}
            world.param(
                "message_id",
                posted["id"],
                visible,
                prefix=f"{PAGES}/chatter/{record_type}/{ref.value}/messages/",
                acting={author, *moderators},
            )


def _handoffs(world: World, team_id: int) -> None:
    """A hand-off of a customer of ``owner``'s to the third team, one of ``other_team``'s, and
    the bodies that decide on them."""
    customer = _customer(world, "owner", f"Handover {MARKER}")
    handoff = _json(
        world.api("owner").post(
            f"{API}/handoffs",
            json={
                "record_type": "customer",
                "record_id": customer,
                "to_team_id": team_id,
                "message": f"{MARKER} please take over",
            },
        )
    )
    theirs = _json(
        world.api("other_team").post(
            f"{API}/handoffs",
            json={
                "record_type": "customer",
                "record_id": world.other_customer_id,
                "to_team_id": team_id,
                "message": f"{MINE} yours now",
            },
        )
    )
    world.record("handoff", handoff["id"])
    world.record("handoff", theirs["id"], OTHERS)
    for prefix in (f"{API}/handoffs/", f"{PAGES}/handoffs/"):
        world.param("handoff_id", handoff["id"], prefix=prefix)
        for decision in ("accept", "return"):
            world.param(
                "handoff_id",
                handoff["id"],
                prefix=f"{prefix}{{handoff_id}}/{decision}",
                acting=DECIDERS,
            )
        world.param(
            "handoff_id",
            handoff["id"],
            prefix=f"{prefix}{{handoff_id}}/cancel",
            acting={"owner"},
        )
    version = handoff["version"]
    reason = f"{MARKER} not for us"
    for decision in ("accept", "cancel"):
        world.body("POST", f"{API}/handoffs/{{handoff_id}}/{decision}", {"version": version})
        world.body("POST", f"{PAGES}/handoffs/{{handoff_id}}/{decision}", {"version": str(version)})
    world.body(
        "POST", f"{API}/handoffs/{{handoff_id}}/return", {"version": version, "reason": reason}
    )
    world.body(
        "POST",
        f"{PAGES}/handoffs/{{handoff_id}}/return",
        {"version": str(version), "reason": reason},
    )
    new = {
        "record_type": "customer",
        "record_id": world.customer_id,
        "to_team_id": team_id,
        "message": f"{MARKER} over to you",
    }
    world.body("POST", f"{API}/handoffs", new, SEEING)
    form = {**new, "record_id": str(world.customer_id), "to_team_id": str(team_id)}
    world.body("POST", f"{PAGES}/handoffs/new", {**form, "deadline": ""}, SEEING)


def _partners(world: World) -> None:
    """A partner with contacts (two of them with a sign-in), its links to each persona's
    customer, a share of ``owner``'s customer with one partner sign-in; the bodies."""
    owner, manager = world.api("owner"), world.api("manager")
    partner = _json(
        owner.post(f"{API}/partners", json={"name": "Matrix Supplies", "kind": "supplier"})
    )
    partner_id = partner["id"]
    contacts = f"{API}/partners/{partner_id}/contacts"
    contact = _json(owner.post(contacts, json={"name": "Lan Contact", "position": "Buyer"}))
    signed = []
    for name in ("Minh", "Quang"):
        person = _json(
            owner.post(contacts, json={"name": f"{name} Partner", "email": f"{name}@partner.test"})
        )
        signed.append(_json(manager.post(f"{contacts}/{person['id']}/invite"))["user_id"])
    links = f"{API}/partners/{partner_id}/links"
    link = _json(
        owner.post(
            links,
            json={
                "record_id": world.customer_id,
                "relation": "referred_by",
                "note": f"{MARKER} referral",
            },
        )
    )
    world.api("other_team").post(
        links,
        json={"record_id": world.other_customer_id, "relation": "sold_by", "note": f"{MINE} deal"},
    )
    share = {"customer_id": world.customer_id, "user_id": signed[0], "note": f"{MARKER} shared"}
    _json(manager.post(f"{API}/shares", json=share))

    world.param("partner_id", partner_id, EVERYONE)
    world.param("contact_id", contact["id"], EVERYONE)
    world.param("link_id", link["id"])
    world.record("partner", partner_id, EVERYONE)
    world.record("collaborative.partner", partner_id, EVERYONE)

    version = _json(owner.get(f"{API}/partners/{partner_id}"), 200)["version"]
    world.body("POST", f"{API}/partners", {"name": "Matrix Resellers", "kind": "reseller"})
    world.body("PATCH", f"{API}/partners/{{partner_id}}", {"version": version, "notes": "Reliable"})
    world.body("POST", f"{API}/partners/{{partner_id}}/contacts", {"name": "Hoa Contact"})
    world.body(
        "PATCH", f"{API}/partners/{{partner_id}}/contacts/{{contact_id}}", {"position": "Lead"}
    )
    new_link = {
        "record_id": world.customer_id,
        "relation": "served_by",
        "note": f"{MARKER} service",
    }
    world.body("POST", f"{API}/partners/{{partner_id}}/links", new_link, SEEING)
    new_share = {"customer_id": world.customer_id, "user_id": signed[1], "note": MARKER}
    world.body("POST", f"{API}/shares", new_share, SEEING)
    world.body(
        "POST",
        f"{PAGES}/partners/links",
        {
            "record_id": str(world.customer_id),
            "partner_id": str(partner_id),
            "relation": "served_by",
            "note": f"{MARKER} service",
        },
        SEEING,
    )
    world.body("POST", f"{PAGES}/partners/{{partner_id:int}}/contacts", {"name": "Hoa Contact"})
    world.body(
        "POST",
        f"{PAGES}/shares",
        {"customer_id": str(world.customer_id), "user_id": str(signed[1]), "note": MARKER},
        SEEING,
    )
    world.body(
        "POST",
        f"{PAGES}/shares/delete",
        {"customer_id": str(world.customer_id), "user_id": str(signed[0])},
        SEEING,
    )


def build(world: World) -> None:
    """Records of every kind the module's routes take, with their route inputs."""
    from core.records import record_types

    team_id = _third_team(world)
    _teams(world, team_id)
    _messages(world)
    _handoffs(world, team_id)
    _partners(world)
    chatter_messages(world, [name for name in record_types(world.crm) if name in world.records])
