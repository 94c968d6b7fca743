"""A customer's new owner takes over their open alerts (``customer_updated``): through the
customers API and service, in one transaction of its own after the change committed, versions
raised, closed alerts left with whoever owned them, failures logged."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from core.customers import service
from core.customers.models import Customer
from core.models import AuditLog
from plugins.smart_sales import alerts, events
from tests.plugins.smart_sales.helpers import (
    AN,
    BINH,
    CHI,
    MAI,
    add_alert,
    alerts_of,
    customer,
    product,
    user,
)


@pytest.fixture
def book(ss_crm):
    """Hoa (An's) with alerts in every state, a churn alert, and Lan (An's too) with one."""
    crm = ss_crm
    an = crm.people[AN]
    with crm.db.write() as session:
        xay = product(session, crm, "MAY-XAY", name="Máy xay", price=500_000)
        noi = product(session, crm, "NOI", name="Nồi", price=900_000)
        bep = product(session, crm, "BEP", name="Bếp từ", price=1_200_000)
        hoa = customer(session, "Nguyễn Thị Hoa", an)
        lan = customer(session, "Lê Thị Lan", an)
        ids = {
            "hoa": hoa,
            "lan": lan,
            "new": add_alert(session, customer_id=hoa, product_id=xay, owner_id=an),
            "seen": add_alert(session, customer_id=hoa, product_id=noi, owner_id=an, state="seen"),
            "acted": add_alert(
                session, customer_id=hoa, product_id=bep, owner_id=an, state="acted"
            ),
            "churn": add_alert(session, customer_id=hoa, kind="churn", owner_id=an),
            "converted": add_alert(
                session, customer_id=hoa, product_id=xay, owner_id=an, state="converted"
            ),
            "dismissed": add_alert(
                session, customer_id=hoa, product_id=noi, owner_id=an, state="dismissed"
            ),
            "expired": add_alert(
                session, customer_id=hoa, product_id=bep, owner_id=an, state="expired"
            ),
            "lans": add_alert(session, customer_id=lan, product_id=xay, owner_id=an),
        }
    return ids


OPEN = ("new", "seen", "acted", "churn")
CLOSED = ("converted", "dismissed", "expired")


def _owners(crm) -> dict[int, tuple[int | None, int]]:
    """Every alert's ``(owner_id, version)`` by id."""
    with crm.db.session() as session:
        return {a.id: (a.owner_id, a.version) for a in alerts_of(session)}


def _change_owner(crm, customer_id: int, owner_id: int | None, **more) -> dict:
    """Change the customer through the core service in a write transaction (hooks run after
    the commit, as for any caller); returns the changes."""
    with crm.db.write() as session:
        found = session.get(Customer, customer_id)
        return service.update(session, crm, found, {"owner_id": owner_id, **more}, found.version)


def test_a_new_owner_through_the_api_takes_the_open_alerts(ss_crm, book, api):
    binh = ss_crm.people[BINH]
    manager = api(ss_crm, MAI)
    current = manager.get(f"/api/customers/{book['hoa']}").json()
    response = manager.patch(
        f"/api/customers/{book['hoa']}", json={"owner_id": binh, "version": current["version"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["owner_id"] == binh
    owners = _owners(ss_crm)
    for name in OPEN:
        assert owners[book[name]] == (binh, 2), name
    for name in CLOSED:  # what An converted, dismissed or let expire stays An's
        assert owners[book[name]] == (ss_crm.people[AN], 1), name
    assert owners[book["lans"]] == (ss_crm.people[AN], 1)  # another customer of An's
    # the inboxes follow: Bình has Hoa's open alerts, An only Lan's
    assert api(ss_crm, BINH).get("/api/smart_sales/alerts/count").json() == {
        "count": 3,
        "open": 4,
    }
    assert api(ss_crm, AN).get("/api/smart_sales/alerts/count").json() == {
        "count": 1,
        "open": 1,
    }
    with ss_crm.db.session() as session:
        mine = session.scalars(alerts.inbox_query(ss_crm, user(ss_crm, BINH))).all()
        assert sorted(a.id for a in mine) == sorted(book[name] for name in OPEN)
        moves = session.scalars(
            select(AuditLog).where(AuditLog.model == "smart_sales_alert").order_by(AuditLog.id)
        ).all()
    assert sorted(int(m.record_id) for m in moves) == sorted(book[name] for name in OPEN)
    assert {(m.actor_id, m.actor) for m in moves} == {(ss_crm.people[MAI], MAI)}
    assert moves[0].before == {"owner_id": ss_crm.people[AN]}
    assert moves[0].after == {"owner_id": binh}


def test_the_moved_alert_is_stale_for_a_page_read_before(ss_crm, book, api):
    """The move raises the version: An's page, read before, cannot act on the alert unseen."""
    seller = api(ss_crm, AN)
    before = seller.get(f"/api/smart_sales/alerts/{book['new']}").json()
    _change_owner(ss_crm, book["hoa"], ss_crm.people[BINH])
    response = api(ss_crm, MAI).post(
        f"/api/smart_sales/alerts/{book['new']}/act", json={"version": before["version"]}
    )
    assert response.status_code == 409


def test_a_customer_without_an_owner_gets_one(ss_crm):
    """Alerts raised while the customer had no owner reached nobody; the first owner gets them."""
    with ss_crm.db.write() as session:
        hung = customer(session, "Trần Văn Hùng")
        item = product(session, ss_crm, "TRA", name="Trà Ô Long")
        alert = add_alert(session, customer_id=hung, product_id=item)
    _change_owner(ss_crm, hung, ss_crm.people[CHI])
    assert _owners(ss_crm)[alert] == (ss_crm.people[CHI], 2)


def test_taking_the_owner_away_leaves_the_alerts_with_nobody(ss_crm, book):
    assert _change_owner(ss_crm, book["hoa"], None) == {"owner_id": (ss_crm.people[AN], None)}
    owners = _owners(ss_crm)
    assert [owners[book[name]] for name in OPEN] == [(None, 2)] * len(OPEN)
    assert owners[book["expired"]] == (ss_crm.people[AN], 1)


def test_other_changes_leave_the_alerts_alone(ss_crm, book):
    before = _owners(ss_crm)
    with ss_crm.db.write() as session:
        found = session.get(Customer, book["hoa"])
        changes = service.update(session, ss_crm, found, {"display_name": "Hoa"}, found.version)
    assert "display_name" in changes
    assert _owners(ss_crm) == before


def test_the_customers_owner_as_it_is_now_decides(ss_crm, book):
    """A late hook call (the owner changed twice meanwhile) moves the alerts to the owner the
    customer has now, not to the one its ``changes`` name."""
    _change_owner(ss_crm, book["hoa"], ss_crm.people[CHI])
    events.on_customer_updated(
        ss_crm,
        {"id": book["hoa"]},
        {"owner_id": (ss_crm.people[AN], ss_crm.people[BINH])},
        None,
    )
    owners = _owners(ss_crm)
    assert owners[book["new"]] == (ss_crm.people[CHI], 2)  # already there: not moved again


def test_a_failure_is_logged_and_the_customer_keeps_its_owner(ss_crm, book, monkeypatch, caplog):
    def broken(session, customer_id, actor_id=None):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(events, "move_open_alerts", broken)
    with caplog.at_level(logging.ERROR):
        _change_owner(ss_crm, book["hoa"], ss_crm.people[BINH])
    assert "moving the alerts of customer" in caplog.text
    with ss_crm.db.session() as session:
        assert session.get(Customer, book["hoa"]).owner_id == ss_crm.people[BINH]
    assert _owners(ss_crm)[book["new"]] == (ss_crm.people[AN], 1)
