"""Who sees which alert: the customer's record rule, the read permission, the inbox scopes; and
the transitions people make (seen, acted, dismissed) with their checks."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from plugins.smart_sales import alerts
from plugins.smart_sales.models import Alert
from tests.plugins.smart_sales.helpers import (
    ADMIN,
    AN,
    BINH,
    CHI,
    DUNG,
    MAI,
    add_alert,
    customer,
    product,
    user,
)


@pytest.fixture
def world(ss_crm):
    """Customers of An, Bình (both north), Chi (south) and one without owner, each with an
    alert owned by the customer's owner; An also owns an alert on Bình's customer."""
    people = ss_crm.people
    with ss_crm.db.write() as session:
        item = product(session, ss_crm, "MAY-LOC", name="Máy lọc nước")
        spare = product(session, ss_crm, "LOI-LOC", name="Lõi lọc")
        made = {
            "an": customer(session, "Nguyễn Thị Hoa", people[AN]),
            "binh": customer(session, "Trần Văn Hùng", people[BINH]),
            "chi": customer(session, "Lê Thu Trang", people[CHI]),
            "nobody": customer(session, "Phạm Minh Tuấn"),
        }
        ids = {
            name: add_alert(
                session,
                customer_id=cid,
                product_id=item,
                owner_id=people.get(f"{name}@example.com"),
                expected_value_minor=100 * (i + 1),
                value_tier="B",
            )
            for i, (name, cid) in enumerate(made.items())
        }
        ids["an_on_binh"] = add_alert(
            session,
            customer_id=made["binh"],
            product_id=spare,
            owner_id=people[AN],
            expected_value_minor=50,
            value_tier="A",
        )
    return ids


def _visible(crm, email: str, **kwargs) -> set[int]:
    query = alerts.inbox_query(crm, user(crm, email), **kwargs)
    with crm.db.session() as session:
        return set(session.scalars(query.with_only_columns(Alert.id)))


def _all_visible(crm, email: str) -> set[int]:
    condition = alerts.visible_condition(crm, user(crm, email))
    query = select(Alert.id)
    if condition is not None:
        query = query.where(condition)
    with crm.db.session() as session:
        return set(session.scalars(query))


def test_a_salesperson_sees_the_alerts_of_the_customers_they_may_see(ss_crm, world):
    # sales has team scope: An sees the north team's customers and the unowned ones
    assert _all_visible(ss_crm, AN) == {
        world["an"],
        world["binh"],
        world["nobody"],
        world["an_on_binh"],
    }
    assert _all_visible(ss_crm, CHI) == {world["chi"], world["nobody"]}
    assert _all_visible(ss_crm, ADMIN) == set(world.values())
    assert alerts.visible_condition(ss_crm, user(ss_crm, ADMIN)) is None


def test_without_the_read_permission_nothing_is_visible(ss_crm, world):
    assert _all_visible(ss_crm, DUNG) == set()
    with ss_crm.db.session() as session:
        assert alerts.get_visible(ss_crm, session, user(ss_crm, DUNG), world["nobody"]) is None


def test_the_inbox_mine_holds_the_alerts_the_user_owns(ss_crm, world):
    assert _visible(ss_crm, AN) == {world["an"], world["an_on_binh"]}
    assert _visible(ss_crm, BINH) == {world["binh"]}
    assert _visible(ss_crm, CHI) == {world["chi"]}
    with ss_crm.db.session() as session:
        assert alerts.open_count(ss_crm, session, user(ss_crm, AN)) == 2
        assert alerts.open_count(ss_crm, session, user(ss_crm, DUNG)) == 0


def test_an_alert_owned_by_someone_who_may_no_longer_see_the_customer_is_hidden(ss_crm, world):
    people = ss_crm.people
    with ss_crm.db.write() as session:
        alert = session.get(Alert, world["chi"])
        alert.owner_id = people[AN]  # Chi's customer, An's alert: An may not see the customer
    assert world["chi"] not in _visible(ss_crm, AN)
    with ss_crm.db.session() as session:
        assert alerts.get_visible(ss_crm, session, user(ss_crm, AN), world["chi"]) is None
        assert alerts.get_visible(ss_crm, session, user(ss_crm, CHI), world["chi"]) is not None


def test_the_team_inbox_needs_the_team_permission(ss_crm, world):
    with pytest.raises(alerts.AlertError) as refused:
        alerts.inbox_query(ss_crm, user(ss_crm, AN), scope="team")
    assert refused.value.field == "scope"
    # the north manager sees the north team's alerts and the unowned pool, not the south's
    assert _visible(ss_crm, MAI, scope="team") == {
        world["an"],
        world["binh"],
        world["nobody"],
        world["an_on_binh"],
    }
    assert _visible(ss_crm, ADMIN, scope="team") == set(world.values())


def test_inbox_orders_and_filters(ss_crm, world):
    admin = user(ss_crm, ADMIN)
    with ss_crm.db.session() as session:

        def ids(**kwargs):
            return list(session.scalars(alerts.inbox_query(ss_crm, admin, scope="team", **kwargs)))

        priority = [a.id for a in ids()]
        # tier A first, then expected value, highest first
        assert priority == [
            world["an_on_binh"],
            world["nobody"],
            world["chi"],
            world["binh"],
            world["an"],
        ]
        value = [a.id for a in ids(sort="value")]
        assert value[-1] == world["an_on_binh"]
        assert [a.id for a in ids(kind="churn")] == []
        assert [a.id for a in ids(states=["dismissed"])] == []
    for bad in ({"sort": "magic"}, {"kind": "magic"}, {"states": ["gone"]}, {"scope": "all"}):
        with pytest.raises(alerts.AlertError):
            alerts.inbox_query(ss_crm, admin, **bad)


def test_seen_acted_dismissed(ss_crm, world):
    an = user(ss_crm, AN)
    with ss_crm.db.write() as session:
        alert = alerts.get_visible(ss_crm, session, an, world["an"])
        assert alerts.mark_seen(session, alert, an) is True
        assert alerts.mark_seen(session, alert, an) is False
        assert alert.state == "seen" and alert.seen_at is not None
        version = alert.version
        alerts.act(session, alert, an, version=version)
        assert (alert.state, alert.acted_by) == ("acted", an.id)
        assert alert.acted_at is not None and alert.open_key is not None
        alerts.act(session, alert, an)  # acting again changes nothing
        assert alert.version == version + 1
        with pytest.raises(alerts.StaleAlert) as stale:
            alerts.dismiss(session, alert, an, "not_relevant", version=version)
        assert stale.value.current == version + 1
        with pytest.raises(alerts.AlertError) as bad:
            alerts.dismiss(session, alert, an, "bored")
        assert bad.value.field == "reason"
        alerts.dismiss(session, alert, an, "customer_declined", "  Khách đã mua ở nơi khác  ")
        assert alert.state == "dismissed"
        assert alert.open_key is None and alert.closed_at is not None
        assert (alert.dismissed_by, alert.dismiss_reason) == (an.id, "customer_declined")
        assert alert.dismiss_note == "Khách đã mua ở nơi khác"
        for again in (
            lambda: alerts.act(session, alert, an),
            lambda: alerts.dismiss(session, alert, an, "other"),
        ):
            with pytest.raises(alerts.AlertError) as closed:
                again()
            assert closed.value.field == "state"
        assert alerts.mark_seen(session, alert, an) is False
    with ss_crm.db.session() as session:
        stored = session.get(Alert, world["an"])
        assert stored.state == "dismissed"
        assert alerts.open_count(ss_crm, session, an) == 1


def test_a_long_note_is_refused(ss_crm, world):
    an = user(ss_crm, AN)
    with ss_crm.db.write() as session:
        alert = session.get(Alert, world["an"])
        with pytest.raises(alerts.AlertError) as bad:
            alerts.dismiss(session, alert, an, "other", "x" * 2001)
        assert bad.value.field == "note"
        assert alert.state == "new"
