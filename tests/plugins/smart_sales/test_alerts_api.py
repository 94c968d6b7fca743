"""The alerts API under ``/api/smart_sales/``: the inbox listing (scopes, sorts, filters, keyset
cursors), counts, one alert, act and dismiss (409 on a stale version, 422 on a bad reason or a
closed alert), "seen", and a customer's next best offers; permissions and record rules.

``seed`` builds the world the page and view tests share too."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from core.normalize import search_key
from plugins.smart_sales.models import Alert
from tests.plugins.smart_sales.helpers import (
    AN,
    BINH,
    CHI,
    DUNG,
    MAI,
    add_alert,
    alerts_of,
    customer,
    days_ago,
    product,
)

BASE = "/api/smart_sales"
XSS = "<script>alert('x')</script> Lõi lọc"


def cross_reason(antecedent: int, sku: str, consequent_sku: str) -> dict[str, Any]:
    """The ``reason`` facts of a cross-sell alert from the rule antecedent -> product."""
    return {
        "rule": f"{antecedent}>0",
        "antecedent": [antecedent],
        "antecedent_skus": [sku],
        "consequent_sku": consequent_sku,
        "confidence": 0.42,
        "lift": 3.1,
        "support": 0.05,
    }


def _customer(session: Any, name: str, owner: int | None = None) -> int:
    """A customer whose search key is the real one (accents folded), so searches find it."""
    return customer(session, name, owner, search_key=search_key(name))


def seed(crm: Any, *, xss: bool = False) -> dict[str, int]:
    """Products, customers of An, Bình (north), Chi (south) and nobody, and alerts:

    - An's: ``an_b`` (cross-sell, tier B, value 300,000), ``an_a`` (up-sell, tier A, 100,000),
      ``an_none`` (cross-sell, no tier, 900,000), ``an_churn`` (churn, tier A, 2,000,000),
      ``an_closed`` (dismissed), all on An's customers ``hoa`` and ``lan``;
    - ``binh`` on Bình's customer, ``chi`` on Chi's, ``nobody`` on the unowned customer.
    """
    people = crm.people
    with crm.db.write() as session:
        machine = product(
            session, crm, "MAY-LOC", name="Máy lọc nước", price=5_000_000, cost=3_000_000
        )
        spare = product(session, crm, "LOI-LOC", name=XSS if xss else "Lõi lọc", price=700_000)
        pro = product(session, crm, "MAY-PRO", name="Máy lọc Pro", price=9_000_000)
        kettle = product(session, crm, "AM-DUN", name="Ấm đun siêu tốc", price=400_000)
        hoa = _customer(session, "Nguyễn Thị Hoa", people[AN])
        lan = _customer(session, "Phạm Ngọc Lan", people[AN])
        hung = _customer(session, "Trần Văn Hùng", people[BINH])
        trang = _customer(session, "Lê Thu Trang", people[CHI])
        tuan = _customer(session, "Phạm Minh Tuấn")
        offer = cross_reason(machine, "MAY-LOC", "LOI-LOC")
        ids = {
            "machine": machine,
            "spare": spare,
            "pro": pro,
            "kettle": kettle,
            "hoa": hoa,
            "lan": lan,
            "hung": hung,
            "trang": trang,
            "tuan": tuan,
        }
        common = {"probability": 0.42, "price_minor": 700_000, "margin_minor": 210_000}
        ids["an_b"] = add_alert(
            session,
            customer_id=hoa,
            product_id=spare,
            owner_id=people[AN],
            value_tier="B",
            expected_value_minor=300_000,
            reason=offer,
            raised_at=days_ago(3),
            **common,
        )
        ids["an_a"] = add_alert(
            session,
            customer_id=lan,
            kind="up_sell",
            product_id=pro,
            from_product_id=machine,
            owner_id=people[AN],
            value_tier="A",
            expected_value_minor=100_000,
            reason={
                "from_product_id": machine,
                "from_sku": "MAY-LOC",
                "to_sku": "MAY-PRO",
                "via": "upgrade_to",
                "category": None,
                "rate": 0.1,
                "measured": False,
            },
            raised_at=days_ago(1),
            probability=0.1,
            price_minor=9_000_000,
            margin_minor=2_700_000,
        )
        ids["an_none"] = add_alert(
            session,
            customer_id=lan,
            product_id=kettle,
            owner_id=people[AN],
            expected_value_minor=900_000,
            reason=cross_reason(machine, "MAY-LOC", "AM-DUN"),
            raised_at=days_ago(2),
            **common,
        )
        ids["an_churn"] = add_alert(
            session,
            customer_id=hoa,
            kind="churn",
            owner_id=people[AN],
            value_tier="A",
            expected_value_minor=2_000_000,
            probability=0.8,
            reason={
                "probability_alive": 0.2,
                "days_since_last": 120,
                "usual_gap_days": 30,
                "signal": "both",
            },
            raised_at=days_ago(5),
        )
        ids["an_closed"] = add_alert(
            session,
            customer_id=hoa,
            product_id=kettle,
            owner_id=people[AN],
            state="dismissed",
            dismiss_reason="bad_timing",
            expected_value_minor=5_000_000,
            reason=cross_reason(machine, "MAY-LOC", "AM-DUN"),
            raised_at=days_ago(20),
        )
        for name, cid, owner in (
            ("binh", hung, people[BINH]),
            ("chi", trang, people[CHI]),
            ("nobody", tuan, None),
        ):
            ids[name] = add_alert(
                session,
                customer_id=cid,
                product_id=spare,
                owner_id=owner,
                value_tier="C",
                expected_value_minor=50_000,
                reason=offer,
                **common,
            )
    return ids


def ids_of(response) -> list[int]:
    """The ids of a page of alerts."""
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def state_of(crm: Any, alert_id: int) -> Alert:
    """The alert as stored now."""
    with crm.db.session() as session:
        found = session.get(Alert, alert_id)
        session.expunge(found)
        return found


@pytest.fixture
def world(ss_crm):
    """``seed`` of ``ss_crm``."""
    return seed(ss_crm)


def test_my_inbox_sorts_by_priority_value_or_date_and_hides_others(ss_crm, world, api):
    an = api(ss_crm, AN)
    # priority: tier A first (by value), then B, then no tier; closed and others' left out
    assert ids_of(an.get(f"{BASE}/alerts")) == [
        world["an_churn"],
        world["an_a"],
        world["an_b"],
        world["an_none"],
    ]
    assert ids_of(an.get(f"{BASE}/alerts", params={"sort": "value"})) == [
        world["an_churn"],
        world["an_none"],
        world["an_b"],
        world["an_a"],
    ]
    assert ids_of(an.get(f"{BASE}/alerts", params={"sort": "recent"})) == [
        world["an_a"],
        world["an_none"],
        world["an_b"],
        world["an_churn"],
    ]
    assert ids_of(an.get(f"{BASE}/alerts", params={"kind": "churn"})) == [world["an_churn"]]
    closed = an.get(f"{BASE}/alerts", params={"state": ["dismissed", "expired"]})
    assert ids_of(closed) == [world["an_closed"]]
    first = an.get(f"{BASE}/alerts").json()["items"][0]
    assert first["customer_name"] == "Nguyễn Thị Hoa"
    assert first["kind"] == "churn" and first["open"] is True
    assert first["reason_data"]["signal"] == "both"
    assert "120" in first["reason"]
    upsell = an.get(f"{BASE}/alerts/{world['an_a']}").json()
    assert upsell["product_name"] == "Máy lọc Pro"
    assert upsell["from_product_name"] == "Máy lọc nước"
    assert "Máy lọc nước" in upsell["reason"] and "Máy lọc Pro" in upsell["reason"]
    assert an.get(f"{BASE}/alerts", params={"sort": "size"}).status_code == 422
    assert an.get(f"{BASE}/alerts", params={"state": "lost"}).status_code == 422


@pytest.mark.parametrize("sort", ["priority", "value", "recent"])
def test_cursors_walk_every_alert_once_in_order(ss_crm, world, api, sort):
    an = api(ss_crm, AN)
    everything = ids_of(an.get(f"{BASE}/alerts", params={"sort": sort}))
    walked: list[int] = []
    cursor = None
    while True:
        params = {"sort": sort, "limit": 1, **({"cursor": cursor} if cursor else {})}
        body = an.get(f"{BASE}/alerts", params=params).json()
        walked += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert walked == everything and len(walked) == 4
    two = an.get(f"{BASE}/alerts", params={"sort": sort, "limit": 2}).json()
    rest = an.get(
        f"{BASE}/alerts", params={"sort": sort, "limit": 10, "cursor": two["next_cursor"]}
    ).json()
    assert [i["id"] for i in two["items"] + rest["items"]] == everything
    assert rest["next_cursor"] is None


def test_a_bad_cursor_is_refused(ss_crm, world, api):
    an = api(ss_crm, AN)
    cursor = an.get(f"{BASE}/alerts", params={"limit": 1}).json()["next_cursor"]
    mismatched = an.get(f"{BASE}/alerts", params={"sort": "recent", "cursor": cursor})
    assert mismatched.status_code == 422
    assert mismatched.json()["detail"][0]["loc"] == ["query", "cursor"]
    assert an.get(f"{BASE}/alerts", params={"cursor": "not-a-cursor!"}).status_code == 422


def test_the_team_inbox_needs_the_team_permission(ss_crm, world, api):
    assert api(ss_crm, AN).get(f"{BASE}/alerts", params={"scope": "team"}).status_code == 403
    mai = api(ss_crm, MAI)  # manager of the north team
    assert ids_of(mai.get(f"{BASE}/alerts")) == []  # she owns none
    team = set(ids_of(mai.get(f"{BASE}/alerts", params={"scope": "team"})))
    # An's and Bình's (north) and the unowned pool; never Chi's (south)
    assert team == {
        world["an_churn"],
        world["an_a"],
        world["an_b"],
        world["an_none"],
        world["binh"],
        world["nobody"],
    }


def test_one_alert_is_404_when_its_customer_is_hidden(ss_crm, world, api):
    an = api(ss_crm, AN)
    assert an.get(f"{BASE}/alerts/{world['binh']}").status_code == 200  # same team
    assert an.get(f"{BASE}/alerts/{world['chi']}").status_code == 404
    assert an.get(f"{BASE}/alerts/999999").status_code == 404
    chi = api(ss_crm, CHI)
    assert chi.get(f"{BASE}/alerts/{world['an_b']}").status_code == 404
    assert chi.post(f"{BASE}/alerts/{world['an_b']}/act", json={}).status_code == 404
    assert (
        chi.post(f"{BASE}/alerts/{world['an_b']}/dismiss", json={"reason": "other"}).status_code
        == 404
    )
    assert state_of(ss_crm, world["an_b"]).state == "new"
    dung = api(ss_crm, DUNG)  # service: no alert permission at all
    assert dung.get(f"{BASE}/alerts").status_code == 403
    assert dung.get(f"{BASE}/alerts/count").status_code == 403
    assert dung.get(f"{BASE}/alerts/{world['nobody']}").status_code == 403


def test_act_then_count_and_a_stale_version_is_409(ss_crm, world, api):
    an = api(ss_crm, AN)
    assert an.get(f"{BASE}/alerts/count").json() == {"count": 4, "open": 4}
    acted = an.post(f"{BASE}/alerts/{world['an_b']}/act", json={"version": 1})
    assert acted.status_code == 200, acted.text
    body = acted.json()
    assert body["state"] == "acted" and body["acted_by"] == ss_crm.people[AN]
    assert body["version"] == 2 and body["acted_at"] and body["seen_at"]
    # acting waits for the customer's order: still open, no longer waiting for me
    assert an.get(f"{BASE}/alerts/count").json() == {"count": 3, "open": 4}
    stale = an.post(
        f"{BASE}/alerts/{world['an_b']}/dismiss", json={"reason": "other", "version": 1}
    )
    assert stale.status_code == 409
    assert stale.json()["current"]["version"] == 2
    assert stale.json()["current"]["state"] == "acted"
    assert state_of(ss_crm, world["an_b"]).state == "acted"
    # without a version there is no check; acting twice changes nothing
    again = an.post(f"{BASE}/alerts/{world['an_b']}/act")
    assert again.status_code == 200 and again.json()["version"] == 2


def test_dismiss_needs_a_known_reason_and_an_open_alert(ss_crm, world, api):
    an = api(ss_crm, AN)
    url = f"{BASE}/alerts/{world['an_none']}/dismiss"
    bad = an.post(url, json={"reason": "bored"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "reason"]
    assert an.post(url, json={}).status_code == 422
    done = an.post(url, json={"reason": "customer_declined", "note": "Khách đã mua ở nơi khác"})
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "dismissed"
    stored = state_of(ss_crm, world["an_none"])
    assert stored.dismiss_reason == "customer_declined"
    assert stored.dismiss_note == "Khách đã mua ở nơi khác"
    assert stored.dismissed_by == ss_crm.people[AN] and stored.open_key is None
    closed = an.post(url, json={"reason": "other"})
    assert closed.status_code == 422
    assert closed.json()["detail"][0]["loc"] == ["body", "state"]
    assert an.post(f"{BASE}/alerts/{world['an_closed']}/act").status_code == 422
    assert an.get(f"{BASE}/alerts/count").json() == {"count": 3, "open": 3}
    too_long = an.post(
        f"{BASE}/alerts/{world['an_a']}/dismiss", json={"reason": "other", "note": "x" * 2001}
    )
    assert too_long.status_code == 422


def test_only_the_owner_opening_an_alert_marks_it_seen(ss_crm, world, api):
    mai = api(ss_crm, MAI)
    assert mai.get(f"{BASE}/alerts/{world['an_a']}").json()["state"] == "new"
    assert mai.post(f"{BASE}/alerts/{world['an_a']}/seen").json()["state"] == "new"
    an = api(ss_crm, AN)
    assert an.get(f"{BASE}/alerts/{world['an_a']}").json()["state"] == "new"  # reading: no change
    seen = an.post(f"{BASE}/alerts/{world['an_a']}/seen").json()
    assert seen["state"] == "seen" and seen["seen_at"]
    assert state_of(ss_crm, world["an_a"]).state == "seen"
    assert an.get(f"{BASE}/alerts/count").json() == {"count": 4, "open": 4}


def test_a_customers_next_best_offers(ss_crm, world, api):
    an = api(ss_crm, AN)
    lan = an.get(f"{BASE}/customers/{world['lan']}/offers").json()
    assert [o["id"] for o in lan["items"]] == [world["an_none"], world["an_a"]]
    assert lan["churn"] is None
    hoa = an.get(f"{BASE}/customers/{world['hoa']}/offers").json()
    assert [o["id"] for o in hoa["items"]] == [world["an_b"]]  # the dismissed one is gone
    assert hoa["churn"]["id"] == world["an_churn"]
    one = an.get(f"{BASE}/customers/{world['lan']}/offers", params={"limit": 1}).json()
    assert [o["id"] for o in one["items"]] == [world["an_none"]]
    assert an.get(f"{BASE}/customers/{world['trang']}/offers").status_code == 404
    assert an.get(f"{BASE}/customers/999999/offers").status_code == 404
    # a manager of the team sees them too, a service agent may not
    assert api(ss_crm, MAI).get(f"{BASE}/customers/{world['lan']}/offers").status_code == 200
    assert api(ss_crm, DUNG).get(f"{BASE}/customers/{world['lan']}/offers").status_code == 403


def test_the_offers_shown_setting_limits_the_offers(make_crm, api):
    from tests.plugins.smart_sales.conftest import SMART, _crm

    crm = _crm(lambda **kw: make_crm(smart_sales_offers_shown="1", **kw), SMART)
    world = seed(crm)
    lan = api(crm, AN).get(f"{BASE}/customers/{world['lan']}/offers").json()
    assert [o["id"] for o in lan["items"]] == [world["an_none"]]


def test_an_alert_changed_meanwhile_by_someone_else_answers_409(ss_crm, world, api):
    an, mai = api(ss_crm, AN), api(ss_crm, MAI)
    version = an.get(f"{BASE}/alerts/{world['an_a']}").json()["version"]
    assert mai.post(f"{BASE}/alerts/{world['an_a']}/act", json={"version": version}).is_success
    late = an.post(f"{BASE}/alerts/{world['an_a']}/act", json={"version": version})
    assert late.status_code == 409
    assert late.json()["current"]["acted_by"] == ss_crm.people[MAI]
    with ss_crm.db.session() as session:
        assert [a.state for a in alerts_of(session, world["lan"], kind="up_sell")] == ["acted"]


def test_times_are_iso_with_a_zone(ss_crm, world, api):
    body = api(ss_crm, AN).get(f"{BASE}/alerts/{world['an_b']}").json()
    raised = dt.datetime.fromisoformat(body["raised_at"].replace("Z", "+00:00"))
    assert raised.tzinfo is not None
    assert body["expires_at"] > body["raised_at"]


def test_reasons_are_phrased_in_the_users_language(ss_crm, world, api):
    from sqlalchemy import update

    from core.models import User

    an = api(ss_crm, AN)
    english = an.get(f"{BASE}/alerts/{world['an_b']}").json()["reason"]
    assert "3.1×" in english and "42%" in english
    with ss_crm.db.write() as session:
        session.execute(update(User).where(User.id == ss_crm.people[AN]).values(language="fa"))
    persian = an.get(f"{BASE}/alerts/{world['an_b']}").json()
    assert "۳٫۱" in persian["reason"] and "۴۲" in persian["reason"]  # Persian digits
    assert persian["reason_data"]["lift"] == 3.1  # the facts stay data
