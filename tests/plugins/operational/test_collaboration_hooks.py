"""The operational module's record types, timeline sources and record events, through the
core's hooks alone: only ``operational`` is loaded, so none of this needs the collaborative
module."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import delete, select

from core import hookimpl, records, timeline
from core.auth import SignedIn, signed_in_user
from core.customers import service as customers
from core.customers.models import Customer
from core.db import utcnow
from core.events import RecordEvent
from core.models import RolePermission, User
from plugins.operational import interactions, orders, pipeline, tickets
from plugins.operational.models import LostReason, Opportunity, Ticket

HOUR = dt.timedelta(hours=1)


def user_id(crm, email: str) -> int:
    """The id of the user with ``email``."""
    with crm.db.session() as session:
        return session.scalar(select(User.id).where(User.email == email))


def signed_in(crm, email: str) -> SignedIn:
    """``email``'s user as a request would see them (roles, permissions, scope, team)."""
    with crm.db.session() as session:
        user = signed_in_user(session, user_id(crm, email))
    assert user is not None
    return user


@dataclass
class World:
    """Two customers with a history each; ids by name."""

    t0: dt.datetime
    lan: int
    minh: int
    an: int
    chi: int
    interaction: int
    order: int
    order_ref: str
    ticket: int
    deal: int
    lost_deal: int
    minh_ticket: int


def _close(session, deal_id: int, stage: str, **values) -> None:
    deal = session.get(Opportunity, deal_id)
    pipeline.update(session, deal, {"stage": stage, **values})


@pytest.fixture
def world(ops_crm) -> World:
    """Lan (an's, north) with an interaction, an order, a resolved ticket and a won deal, all
    an's, ten days back and now; Minh (chi's, south) with a ticket and a lost deal."""
    crm = ops_crm
    an, chi = user_id(crm, "an@example.com"), user_id(crm, "chi@example.com")
    t0 = utcnow().replace(microsecond=0) - dt.timedelta(days=10)
    with crm.db.write() as session:
        lan = customers.create(session, crm, {"display_name": "Lan Phạm", "owner_id": an}).id
        minh = customers.create(session, crm, {"display_name": "محمد رضایی", "owner_id": chi}).id
        talk = interactions.log(
            session, lan, "call", "zalo", "Hỏi giá máy pha", user_id=an, occurred_at=t0 + HOUR
        )
        order = orders.create_order(
            session, crm, customer_id=lan, total_minor=1_250_000, placed_at=t0 + 2 * HOUR
        )
        ticket = tickets.create(
            session, lan, "Máy không lên nguồn", assignee_id=an, now=t0 + 3 * HOUR
        )
        tickets.resolve(session, ticket, now=t0 + 5 * HOUR)
        deal = pipeline.create(
            session, {"customer_id": lan, "title": "Máy pha cho quán", "owner_id": an}, "VND"
        )
        minh_ticket = tickets.create(session, minh, "بسته نرسید", assignee_id=chi, now=t0)
        lost = pipeline.create(
            session, {"customer_id": minh, "title": "Hợp đồng năm", "owner_id": chi}, "VND"
        )
    with crm.db.write() as session:
        _close(session, deal.id, "won")
    with crm.db.write() as session:
        reason = session.scalar(select(LostReason.id).where(LostReason.name == "price"))
        _close(session, lost.id, "lost", lost_reason_id=reason)
    return World(
        t0,
        lan,
        minh,
        an,
        chi,
        talk.id,
        order.id,
        order.ref,
        ticket.id,
        deal.id,
        lost.id,
        minh_ticket.id,
    )


def merged(crm, email: str, customer_ids: list[int], **kwargs) -> list[timeline.TimelineEntry]:
    """The unified timeline of ``customer_ids`` as ``email`` sees it."""
    user = signed_in(crm, email)
    with crm.db.session() as session:
        wanted = select(Customer.id).where(Customer.id.in_(customer_ids))
        return timeline.merge(crm, session, user, wanted, **kwargs)


def keys(entries: list[timeline.TimelineEntry]) -> list[tuple[str, str, int | None]]:
    """``(kind, label, record id)`` of each entry, in order."""
    return [(e.kind, e.label, e.record_id) for e in entries]


# --- record types ------------------------------------------------------------------------------


def test_the_three_record_types_are_declared_with_their_pages(ops_crm):
    kinds = records.record_types(ops_crm)
    assert {"customer", "operational.opportunity", "operational.ticket", "operational.order"} <= (
        set(kinds)
    )
    ticket, deal, order = (
        kinds["operational.ticket"],
        kinds["operational.opportunity"],
        kinds["operational.order"],
    )
    assert (ticket.model, ticket.title, ticket.owner_column) == (Ticket, "subject", "assignee_id")
    assert (ticket.team_column, ticket.resource, ticket.link(7)) == (
        "team_id",
        "ticket",
        "/ui/ticket/7",
    )
    assert (deal.title, deal.owner_column, deal.team_column) == ("title", "owner_id", "team_id")
    assert deal.link(3) == "/ui/opportunity/3"
    assert (order.title, order.owner_column, order.team_column) == ("ref", "owner_id", None)
    assert (order.customer_column, order.resource) == ("customer_id", "order")
    assert order.permission == "operational.order:read"


def test_can_see_follows_the_operational_record_rules(ops_crm, world):
    kinds = records.record_types(ops_crm)
    ticket, order, deal = (
        kinds["operational.ticket"],
        kinds["operational.order"],
        kinds["operational.opportunity"],
    )
    with ops_crm.db.session() as session:

        def can(email: str, kind: records.RecordType, record_id: int) -> bool:
            return records.can_see(ops_crm, session, signed_in(ops_crm, email), kind, record_id)

        assert can("an@example.com", ticket, world.ticket)
        assert not can("chi@example.com", ticket, world.ticket)  # sales of another team
        assert can("chi@example.com", ticket, world.minh_ticket)
        assert can("dung@example.com", ticket, world.ticket)  # service sees every ticket
        assert can("an@example.com", order, world.order)
        assert not can("chi@example.com", order, world.order)
        assert not can("chi@example.com", deal, world.deal)
        assert not can("an@example.com", ticket, 999_999)


# --- timeline ----------------------------------------------------------------------------------


def test_the_timeline_merges_every_source_newest_first(ops_crm, world):
    entries = merged(ops_crm, "an@example.com", [world.lan])
    assert keys(entries) == [
        ("deal", "Deal won", world.deal),
        ("ticket", "Ticket resolved", world.ticket),
        ("ticket", "Ticket opened", world.ticket),
        ("order", "Order placed", world.order),
        ("interaction", "Zalo", world.interaction),
    ]
    deal, resolved, opened, order, talk = entries
    assert resolved.at == world.t0 + 5 * HOUR and opened.at == world.t0 + 3 * HOUR
    assert order.at == world.t0 + 2 * HOUR and talk.at == world.t0 + HOUR
    assert (talk.title, talk.actor, talk.url) == (
        "Hỏi giá máy pha",
        "An",
        f"/ui/interaction/{world.interaction}",
    )
    assert (opened.title, opened.url, opened.record_type) == (
        "Máy không lên nguồn",
        f"/ui/ticket/{world.ticket}",
        "operational.ticket",
    )
    assert (order.record_type, order.url) == ("operational.order", f"/ui/order/{world.order}")
    assert order.title == world.order_ref and "1,250,000" in order.detail
    assert (deal.title, deal.actor, deal.record_type) == (
        "Máy pha cho quán",
        "An",
        "operational.opportunity",
    )
    assert {e.customer_id for e in entries} == {world.lan}


def test_the_timeline_respects_kinds_before_and_limit(ops_crm, world):
    lan = [world.lan]
    tickets_only = merged(ops_crm, "an@example.com", lan, kinds=["ticket"])
    assert keys(tickets_only) == [
        ("ticket", "Ticket resolved", world.ticket),
        ("ticket", "Ticket opened", world.ticket),
    ]
    older = merged(ops_crm, "an@example.com", lan, before=world.t0 + 3 * HOUR)
    assert keys(older) == [
        ("order", "Order placed", world.order),
        ("interaction", "Zalo", world.interaction),
    ]
    newest = merged(ops_crm, "an@example.com", lan, limit=2)
    assert keys(newest) == [
        ("deal", "Deal won", world.deal),
        ("ticket", "Ticket resolved", world.ticket),
    ]


def test_sources_apply_their_record_rules_on_top_of_the_customers(ops_crm, world):
    # Even when asked about both customers, chi (south) only gets what the rules show them.
    entries = merged(ops_crm, "chi@example.com", [world.lan, world.minh])
    assert keys(entries) == [
        ("deal", "Deal lost", world.lost_deal),
        ("ticket", "Ticket opened", world.minh_ticket),
    ]
    assert entries[0].detail == "Price too high"
    service = merged(ops_crm, "dung@example.com", [world.lan, world.minh])
    assert {e.customer_id for e in service} == {world.lan, world.minh}


def test_a_closed_ticket_without_resolution_shows_as_closed(ops_crm, world):
    with ops_crm.db.write() as session:
        ticket = session.get(Ticket, world.minh_ticket)
        tickets.change_status(ticket, "closed", now=world.t0 + HOUR)
    entries = merged(ops_crm, "chi@example.com", [world.minh], kinds=["ticket"])
    assert keys(entries) == [
        ("ticket", "Ticket closed", world.minh_ticket),
        ("ticket", "Ticket opened", world.minh_ticket),
    ]


def test_cancelled_orders_show_as_cancelled(ops_crm, world):
    with ops_crm.db.write() as session:
        order = session.get(orders.Order, world.order)
        orders.set_status(session, ops_crm, order, "cancelled", order.version)
    entries = merged(ops_crm, "an@example.com", [world.lan], kinds=["order"])
    assert keys(entries) == [("order", "Order cancelled", world.order)]


def test_no_order_entries_without_the_order_read_permission(ops_crm, world):
    with ops_crm.db.write() as session:
        session.execute(
            delete(RolePermission).where(
                RolePermission.role == "service",
                RolePermission.permission == "operational.order:read",
            )
        )
    entries = merged(ops_crm, "dung@example.com", [world.lan])
    assert entries and "order" not in {e.kind for e in entries}
    assert merged(ops_crm, "dung@example.com", [world.lan], kinds=["order"]) == []


# --- record events -----------------------------------------------------------------------------


class Recorder:
    """A plugin that records the ``record_event`` calls it gets."""

    def __init__(self) -> None:
        self.events: list[RecordEvent] = []

    @hookimpl
    def record_event(self, crm, event):
        self.events.append(event)


@pytest.fixture
def heard(ops_crm, monkeypatch) -> list[RecordEvent]:
    """The events announced, as an enabled module would receive them."""
    recorder = Recorder()
    ops_crm.registry.pm.register(recorder, name="recorder")
    active = type(ops_crm).active
    monkeypatch.setattr(ops_crm, "active", lambda: [*active(ops_crm), "recorder"])
    return recorder.events


def summary(event: RecordEvent) -> tuple:
    """What a listener needs from an event."""
    return (
        event.record_type,
        event.verb,
        event.label,
        event.record_id,
        event.customer_id,
        event.actor_id,
        event.recipients,
    )


def test_services_announce_their_events_once_after_commit(ops_crm, world, heard):
    crm, dung = ops_crm, user_id(ops_crm, "dung@example.com")
    with crm.db.write() as session:
        ticket = tickets.create(
            session, world.lan, "Đổi địa chỉ giao", assignee_id=world.an, crm=crm, actor_id=dung
        )
        assert heard == []  # not before the commit
    assert [summary(e) for e in heard] == [
        ("operational.ticket", "created", "New ticket", ticket.id, world.lan, dung, (world.an,))
    ]
    assert heard[0].title == "Đổi địa chỉ giao"
    heard.clear()

    with crm.db.write() as session:
        tickets.resolve(session, session.get(Ticket, ticket.id), crm=crm, actor_id=dung)
    assert [summary(e) for e in heard] == [
        (
            "operational.ticket",
            "resolved",
            "Ticket resolved",
            ticket.id,
            world.lan,
            dung,
            (world.an,),
        )
    ]
    heard.clear()

    with crm.db.write() as session:
        deal = pipeline.create(
            session, {"customer_id": world.lan, "title": "Gói bảo trì", "owner_id": world.an}, "VND"
        )
    with crm.db.write() as session:
        row = session.get(Opportunity, deal.id)
        pipeline.update(session, row, {"stage": "proposal"}, crm=crm, actor_id=world.an)
        pipeline.update(session, row, {"stage": "won"}, crm=crm, actor_id=world.an)
        pipeline.update(session, row, {"title": "Gói bảo trì 2 năm"}, crm=crm, actor_id=world.an)
    assert [summary(e) for e in heard] == [
        ("operational.opportunity", "won", "Deal won", deal.id, world.lan, world.an, (world.an,))
    ]
    heard.clear()

    with crm.db.write() as session:
        order = orders.create_order(
            session, crm, customer_id=world.lan, total_minor=90_000, actor_id=world.an
        )
    assert [summary(e) for e in heard] == [
        ("operational.order", "placed", "Order placed", order.id, world.lan, world.an, (world.an,))
    ]
    assert heard[0].title == order.ref


def test_a_lost_deal_and_an_unowned_ticket(ops_crm, world, heard):
    crm = ops_crm
    with crm.db.write() as session:
        reason = session.scalar(select(LostReason.id).where(LostReason.name == "timing"))
        deal = pipeline.create(session, {"customer_id": world.minh, "title": "Thuê máy"}, "VND")
        pipeline.update(session, deal, {"stage": "lost", "lost_reason_id": reason}, crm=crm)
        ticket = tickets.create(session, world.minh, "Chưa ai nhận", crm=crm)
    assert [summary(e) for e in heard] == [
        ("operational.opportunity", "lost", "Deal lost", deal.id, world.minh, None, ()),
        ("operational.ticket", "created", "New ticket", ticket.id, world.minh, None, ()),
    ]


def test_nothing_is_announced_when_the_transaction_rolls_back(ops_crm, world, heard):
    crm = ops_crm

    class Abort(Exception):
        pass

    with pytest.raises(Abort), crm.db.write() as session:
        ticket = tickets.create(session, world.lan, "Sẽ bị huỷ", assignee_id=world.an, crm=crm)
        tickets.resolve(session, ticket, crm=crm)
        orders.create_order(session, crm, customer_id=world.lan, total_minor=1)
        row = session.get(Opportunity, world.lost_deal)
        pipeline.update(session, row, {"stage": "won"}, crm=crm)
        raise Abort
    assert heard == []
    with crm.db.session() as session:
        assert session.scalar(select(Ticket.id).where(Ticket.subject == "Sẽ bị huỷ")) is None
    # The next transaction starts clean: only its own event arrives.
    with crm.db.write() as session:
        tickets.create(session, world.lan, "Lần sau", crm=crm)
    assert [(e.verb, e.title) for e in heard] == [("created", "Lần sau")]


def test_calls_without_crm_announce_nothing(ops_crm, world, heard):
    # Services called without ``crm`` (demo data, scripts) stay silent.
    with ops_crm.db.write() as session:
        ticket = tickets.create(session, world.lan, "Không báo", assignee_id=world.an)
        tickets.resolve(session, ticket)
        deal = pipeline.create(session, {"customer_id": world.lan, "title": "Im lặng"}, "VND")
        pipeline.update(session, deal, {"stage": "won"})
    assert heard == []
