"""Merging two customers who both have snapshot rows and campaign memberships works: the merged
customer's snapshot rows go (the next refresh scores the survivor), shared campaign memberships
keep the survivor's, and the rest move to the survivor."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select

from core.customers import identify
from core.customers.models import Customer
from plugins.analytical import rfm
from plugins.analytical.models import Campaign, CampaignMember, RfmScore
from plugins.operational.models import Order


def _customer(session, name: str) -> int:
    now = dt.datetime.now(dt.UTC)
    return session.execute(
        insert(Customer).values(
            kind="person",
            display_name=name,
            search_key=name.lower(),
            archived=False,
            created_at=now,
            updated_at=now,
            version=1,
        )
    ).inserted_primary_key[0]


def test_merging_customers_with_snapshots_and_campaigns(an_crm):
    with an_crm.db.write() as session:
        a, b, c = (_customer(session, n) for n in ("An", "Bình", "Chi"))
        for number, cid in enumerate((a, b, c)):
            session.execute(
                insert(Order).values(
                    ref=f"O{number}",
                    customer_id=cid,
                    status="delivered",
                    currency="VND",
                    placed_at=dt.datetime(2026, 5, 1 + number, tzinfo=dt.UTC),
                    total_minor=100_000,
                    version=1,
                    created_at=dt.datetime.now(dt.UTC),
                )
            )
        rfm.refresh(session, dt.date(2026, 6, 30))
        both = Campaign(name="both", seed="s" * 32, status="frozen")
        only_b = Campaign(name="only b", seed="t" * 32, status="frozen")
        session.add_all([both, only_b])
        session.flush()
        session.execute(
            insert(CampaignMember),
            [
                {"campaign_id": both.id, "customer_id": a, "grp": "target"},
                {"campaign_id": both.id, "customer_id": b, "grp": "control"},
                {"campaign_id": only_b.id, "customer_id": b, "grp": "target"},
            ],
        )
        both_id, only_b_id = both.id, only_b.id
    with an_crm.db.write() as session:
        identify.merge(session, an_crm, session.get(Customer, a), session.get(Customer, b))
    with an_crm.db.session() as session:
        scored = set(session.scalars(select(RfmScore.customer_id)))
        assert scored == {a, c}
        members = set(
            session.execute(
                select(CampaignMember.campaign_id, CampaignMember.customer_id, CampaignMember.grp)
            )
        )
        assert members == {(both_id, a, "target"), (only_b_id, a, "target")}
        assert session.scalar(select(Order.customer_id).where(Order.ref == "O1")) == a
