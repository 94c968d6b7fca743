"""Events of other modules and customer changes reach followers through the inbox: once per
person, never the one who acted, never someone who may not see the record."""

from __future__ import annotations

from sqlalchemy import insert, select

from core.events import RecordEvent, announce
from plugins.collaborative.followers import follow
from plugins.collaborative.models import Notification
from plugins.operational.models import Ticket
from tests.plugins.collaborative.helpers import add_customer

AN, BINH, CHI, DUNG, MAI = (
    "an@example.com",
    "binh@example.com",
    "chi@example.com",
    "dung@example.com",
    "mai@example.com",
)


def _told(crm) -> list[tuple[int, str, str]]:
    with crm.db.session() as session:
        rows = session.execute(
            select(Notification.user_id, Notification.kind, Notification.key).order_by(
                Notification.user_id, Notification.id
            )
        )
        return [tuple(row) for row in rows]


def _ticket(crm) -> tuple[int, int]:
    """A customer of an's (team north) with a ticket assigned to an."""
    with crm.db.write() as session:
        customer = add_customer(session, "Công ty Hoa Sen", owner=crm.people[AN])
        ticket = session.execute(
            insert(Ticket).values(
                customer_id=customer,
                subject="Máy lạnh không chạy",
                assignee_id=crm.people[AN],
            )
        ).inserted_primary_key[0]
    return customer, ticket


def _follow(crm, record_type: str, record_id: int, *emails: str) -> None:
    with crm.db.write() as session:
        for email in emails:
            follow(session, record_type, record_id, crm.people[email], "manual")


def _event(crm, customer: int, ticket: int, **extra) -> RecordEvent:
    values = {
        "record_type": "operational.ticket",
        "record_id": ticket,
        "verb": "opened",
        "label": "Ticket opened",
        "title": "Máy lạnh không chạy",
        "customer_id": customer,
        "actor_id": crm.people[AN],
        **extra,
    }
    return RecordEvent(**values)


def test_a_record_event_reaches_followers_of_the_record_and_its_customer_once(all_crm):
    crm = all_crm
    customer, ticket = _ticket(crm)
    _follow(crm, "operational.ticket", ticket, AN, BINH)
    _follow(crm, "customer", customer, BINH, MAI, CHI)  # chi (south) may not see it
    with crm.db.write() as session:
        announce(session, crm, _event(crm, customer, ticket, recipients=(crm.people[DUNG],)))

    told = _told(crm)
    people = {crm.people[e]: e for e in (AN, BINH, CHI, DUNG, MAI)}
    assert sorted(people[user] for user, _, _ in told) == [BINH, DUNG, MAI]
    assert {kind for _, kind, _ in told} == {"event"}
    with crm.db.session() as session:
        row = session.scalars(
            select(Notification).where(Notification.user_id == crm.people[BINH])
        ).one()
    assert (row.label, row.title, row.url) == (
        "Ticket opened",
        "Máy lạnh không chạy",
        f"/ui/ticket/{ticket}",
    )
    assert (row.record_type, row.record_id, row.customer_id) == (
        "operational.ticket",
        ticket,
        customer,
    )
    assert row.actor_id == crm.people[AN] and row.email_status == "pending"


def test_each_occurrence_of_an_event_is_told_and_a_rollback_tells_nobody(all_crm):
    crm = all_crm
    customer, ticket = _ticket(crm)
    _follow(crm, "operational.ticket", ticket, BINH)
    for _ in range(2):
        with crm.db.write() as session:
            announce(session, crm, _event(crm, customer, ticket, verb="updated"))
    try:
        with crm.db.write() as session:
            announce(session, crm, _event(crm, customer, ticket, verb="updated"))
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    told = _told(crm)
    assert len(told) == 2 and len({key for _, _, key in told}) == 2


def test_an_event_without_followers_or_visible_record_tells_nobody(all_crm):
    crm = all_crm
    customer, ticket = _ticket(crm)
    with crm.db.write() as session:
        announce(session, crm, _event(crm, customer, ticket))
        announce(
            session, crm, _event(crm, customer, ticket, recipients=(crm.people[CHI],), verb="won")
        )
    assert _told(crm) == []


def test_a_customer_change_tells_its_followers_but_not_who_made_it(co_crm, api):
    crm = co_crm
    with crm.db.write() as session:
        customer = add_customer(session, "Công ty Hoa Sen", owner=crm.people[AN])
    _follow(crm, "customer", customer, AN, BINH)
    an = api(crm, AN)
    changed = an.patch(
        f"/api/customers/{customer}",
        json={"version": 1, "display_name": "Công ty Hoa Sen Vàng", "country": "VN"},
    )
    assert changed.status_code == 200, changed.text

    with crm.db.session() as session:
        rows = session.scalars(select(Notification)).all()
    assert [r.user_id for r in rows] == [crm.people[BINH]]
    (row,) = rows
    assert row.kind == "change" and row.label == "Customer changed"
    assert row.title == "Công ty Hoa Sen Vàng" and row.url == f"/ui/customer/{customer}"
    assert "display_name: Công ty Hoa Sen → Công ty Hoa Sen Vàng" in row.body
    assert "country: — → VN" in row.body
    assert row.actor_id == crm.people[AN]

    binh = api(crm, BINH)
    again = binh.patch(f"/api/customers/{customer}", json={"version": 2, "country": "LA"})
    assert again.status_code == 200, again.text
    with crm.db.session() as session:
        told = session.scalars(
            select(Notification.user_id).where(Notification.body.contains("country: VN → LA"))
        ).all()
    assert told == [crm.people[AN]]
