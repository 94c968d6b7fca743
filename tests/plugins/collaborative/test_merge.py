"""Merging customers keeps the conversation, followers, hand-offs, links and shares: what refers
to the merged customer by record id moves to the survivor, duplicates are dropped, and one
pending hand-off per record remains."""

from __future__ import annotations

from sqlalchemy import select

from core.customers import identify
from core.customers.models import Customer
from core.db import utcnow
from plugins.collaborative.models import (
    AccountTeam,
    Follower,
    Handoff,
    Message,
    Partner,
    PartnerLink,
    Share,
)
from tests.plugins.collaborative.helpers import add_customer


def _handoff(customer: int, team: int) -> Handoff:
    return Handoff(
        record_type="customer",
        record_id=customer,
        customer_id=customer,
        to_team_id=team,
        message="Nhờ nhận giúp",
        deadline=utcnow(),
    )


def test_a_merge_moves_what_refers_to_the_merged_customer(co_crm):
    people = co_crm.people
    an, binh = people["an@example.com"], people["binh@example.com"]
    with co_crm.db.write() as session:
        keep = add_customer(session, "Nguyễn Thị Hoa", owner=an)
        gone = add_customer(session, "Nguyen Thi Hoa", owner=an)
        partner = Partner(name="Sao Mai", kind="reseller")
        session.add(partner)
        session.flush()
        for customer in (keep, gone):
            session.add(Follower(record_type="customer", record_id=customer, user_id=an))
            session.add(AccountTeam(customer_id=customer, team_id=people["team:north"]))
            session.add(Share(customer_id=customer, user_id=binh))
            session.add(_handoff(customer, people["team:care"]))
            session.add(
                PartnerLink(
                    partner_id=partner.id,
                    record_type="customer",
                    record_id=customer,
                    customer_id=customer,
                    relation="referred_by",
                )
            )
        session.add(Follower(record_type="customer", record_id=gone, user_id=binh))
        session.add(
            Message(
                record_type="customer",
                record_id=gone,
                customer_id=gone,
                author_id=an,
                body="Ghi chú",
            )
        )
    with co_crm.db.write() as session:
        identify.merge(session, co_crm, session.get(Customer, keep), session.get(Customer, gone))
    with co_crm.db.session() as session:
        message = session.scalars(select(Message)).one()
        assert (message.record_id, message.customer_id) == (keep, keep)
        followers = session.scalars(
            select(Follower.user_id).where(Follower.record_id == keep).order_by(Follower.user_id)
        ).all()
        assert followers == sorted([an, binh])
        assert session.scalars(select(PartnerLink.record_id)).all() == [keep]
        assert session.scalars(select(Share.customer_id)).all() == [keep]
        assert session.scalars(select(AccountTeam.customer_id)).all() == [keep]
        statuses = session.execute(
            select(Handoff.record_id, Handoff.status).order_by(Handoff.id)
        ).all()
        assert statuses == [(keep, "pending"), (keep, "cancelled")]
