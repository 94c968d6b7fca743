"""The module's record rules: account teams, pending hand-offs, shares, team columns of other
modules' records, and who sees which hand-off."""

from __future__ import annotations

from sqlalchemy import select

from core import auth, records, users
from plugins.collaborative import departments, handoffs, rules
from plugins.collaborative.models import Share
from tests.plugins.collaborative.helpers import PASSWORD, add_customer


def _user(crm, email: str) -> auth.SignedIn:
    with crm.db.session() as session:
        return auth.signed_in_user(session, crm.people[email])


def _sees(crm, email: str, customer_id: int) -> bool:
    with crm.db.session() as session:
        return records.can_see_customer(crm, session, _user(crm, email), customer_id)


def test_shares_reach_every_restricted_scope_and_teams_do_not_reach_partners(co_crm):
    people = co_crm.people
    with co_crm.db.write() as session:
        partner = users.create_user(session, "p@example.vn", "Đối tác", PASSWORD, ["partner"])
        users.set_team(session, partner, users.get_team(session, "north"))
        session.flush()
        people["p@example.vn"] = partner.id
        shared = add_customer(session, "Khách chia sẻ", owner=people["chi@example.com"])
        north_account = add_customer(session, "Khách miền Bắc", owner=people["chi@example.com"])
        pool = add_customer(session, "Khách chưa ai nhận")
        departments.set_account_team(session, north_account, people["team:north"], None)
        session.add(Share(customer_id=shared, user_id=partner.id))
        session.add(Share(customer_id=shared, user_id=people["binh@example.com"]))

    assert _sees(co_crm, "p@example.vn", shared)
    assert not _sees(co_crm, "p@example.vn", north_account)  # teams do not widen "shared"
    assert not _sees(co_crm, "p@example.vn", pool)
    assert _sees(co_crm, "binh@example.com", shared) and _sees(
        co_crm, "an@example.com", north_account
    )
    assert not _sees(co_crm, "an@example.com", shared)
    assert _sees(co_crm, "an@example.com", pool)
    assert rules.conditions(co_crm, _user(co_crm, "an@example.com"), "something.else") == []


def test_pending_hand_off_widens_only_while_it_waits(co_crm):
    people = co_crm.people
    with co_crm.db.write() as session:
        customer = add_customer(session, "Cửa hàng Hoa Sen", owner=people["chi@example.com"])
    chi = _user(co_crm, "chi@example.com")
    assert not _sees(co_crm, "binh@example.com", customer)
    with co_crm.db.write() as session:
        h = handoffs.create(
            co_crm, session, chi, "customer", customer, people["team:north"], "Nhờ hỗ trợ"
        )
    assert _sees(co_crm, "binh@example.com", customer)
    with co_crm.db.write() as session:
        handoffs.cancel(co_crm, session, chi, h.id, h.version)
    assert not _sees(co_crm, "binh@example.com", customer)


def test_team_columns_of_other_modules_records(all_crm, api):
    from plugins.operational import pipeline
    from plugins.operational.models import Opportunity

    people = all_crm.people
    with all_crm.db.write() as session:
        customer = add_customer(session, "Công ty Hải Âu", owner=people["chi@example.com"])
        departments.set_account_team(session, customer, people["team:south"], None)
        deal = pipeline.create(
            session,
            {
                "customer_id": customer,
                "title": "Hợp đồng bảo trì",
                "owner_id": people["chi@example.com"],
                "team_id": people["team:south"],
            },
            "VND",
        ).id
    kind = records.record_types(all_crm)["operational.opportunity"]

    def binh_sees() -> bool:
        with all_crm.db.session() as session:
            return records.can_see(all_crm, session, _user(all_crm, "binh@example.com"), kind, deal)

    assert not binh_sees()
    with all_crm.db.write() as session:
        session.get(Opportunity, deal).team_id = people["team:north"]
    assert binh_sees()
    with all_crm.db.write() as session:
        session.get(Opportunity, deal).team_id = people["team:south"]
    assert not binh_sees()
    chi = _user(all_crm, "chi@example.com")
    with all_crm.db.write() as session:
        handoffs.create(
            all_crm,
            session,
            chi,
            "operational.opportunity",
            deal,
            people["team:north"],
            "Khách chuyển ra Hà Nội",
        )
    assert binh_sees()


def test_who_sees_which_hand_off(co_crm, api, browser):
    people = co_crm.people
    with co_crm.db.write() as session:
        customer = add_customer(session, "Khách của An", owner=people["an@example.com"])
    an = _user(co_crm, "an@example.com")
    with co_crm.db.write() as session:
        h = handoffs.create(
            co_crm, session, an, "customer", customer, people["team:care"], "Khiếu nại"
        )

    def listed(email: str) -> list[int]:
        items = api(co_crm, email).get("/api/collaborative/handoffs", params={"box": "all"}).json()
        return [r["id"] for r in items["items"]]

    assert listed("an@example.com") == [h.id]  # created it
    assert listed("binh@example.com") == [h.id]  # sees the record (same team)
    assert listed("dung@example.com") == [h.id]  # receiving team
    assert listed("chi@example.com") == []  # neither
    assert (
        api(co_crm, "chi@example.com").get(f"/api/collaborative/handoffs/{h.id}").status_code == 404
    )
    row = f'data-id="{h.id}"'
    assert row not in browser(co_crm, "chi@example.com").get("/ui/handoff").text
    assert row in browser(co_crm, "binh@example.com").get("/ui/handoff").text
    with co_crm.db.session() as session:
        condition = handoffs.visible_condition(co_crm, _user(co_crm, "chi@example.com"))
        from plugins.collaborative.models import Handoff

        assert session.scalars(select(Handoff.id).where(condition)).all() == []
