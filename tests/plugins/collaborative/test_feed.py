"""The activity feed and the cross-department timeline: the customers I follow, my teams' and
mine, across every enabled module, newest first, filtered, paged with no duplicates, and never
showing what the record rules hide."""

from __future__ import annotations

import datetime as dt
import re

from core.db import utcnow
from plugins.collaborative.models import AccountTeam, Follower, Handoff, Message
from tests.plugins.collaborative.helpers import add_customer

FEED = "/api/collaborative/feed"
T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


def _at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _note(
    session, customer_id: int, body: str, minutes: int, author: int | None = None, at=None
) -> None:
    session.add(
        Message(
            record_type="customer",
            record_id=customer_id,
            customer_id=customer_id,
            author_id=author,
            kind="note",
            body=body,
            created_at=at or _at(minutes),
        )
    )


def _world(crm) -> dict[str, int]:
    """Customers around An (sales, north): one he owns, one of his team's account, one he
    follows in the pool, one of another team he follows but may not see, one of his team's
    owners that no rule brings into his feed; a note on each and a hand-off."""
    people = crm.people
    an, binh, chi = (people[f"{n}@example.com"] for n in ("an", "binh", "chi"))
    with crm.db.write() as session:
        ids = {
            "own": add_customer(session, "Khách của An", owner=an),
            "team": add_customer(session, "Khách của nhóm Bắc", owner=binh),
            "followed": add_customer(session, "Khách được theo dõi", owner=None),
            "south": add_customer(session, "Khách miền Nam", owner=chi),
            "other": add_customer(session, "Khách khác", owner=binh),
        }
        session.add(AccountTeam(customer_id=ids["team"], team_id=people["team:north"]))
        session.add(AccountTeam(customer_id=ids["south"], team_id=people["team:south"]))
        for name in ("followed", "south"):
            session.add(Follower(record_type="customer", record_id=ids[name], user_id=an))
        for minute, name in enumerate(("own", "team", "followed", "south", "other"), start=1):
            _note(session, ids[name], f"Ghi chú về {name}", minute, author=binh)
        session.add(
            Handoff(
                record_type="customer",
                record_id=ids["team"],
                customer_id=ids["team"],
                from_team_id=people["team:north"],
                to_team_id=people["team:care"],
                created_by=binh,
                message="Nhờ chăm sóc khách này",
                deadline=_at(60 * 48),
                created_at=_at(10),
            )
        )
    return ids


def _titles(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


def test_the_feed_shows_my_followed_team_and_own_customers_newest_first(co_crm, api):
    _world(co_crm)
    an = api(co_crm, "an@example.com")
    response = an.get(FEED)
    items = response.json()["items"]
    assert [i["title"] for i in items] == [
        "Kinh doanh miền Bắc → Chăm sóc",
        "Ghi chú về followed",
        "Ghi chú về team",
        "Ghi chú về own",
    ]
    assert items[0]["kind"] == "handoff" and items[0]["label"] == "Handed over"
    assert items[0]["detail"] == "Nhờ chăm sóc khách này"
    assert items[1]["label"] == "Note" and items[1]["actor"] == "Trần Thị Bình"
    assert response.json()["next_before"] is None
    assert _titles(an.get(FEED, params={"scope": "following"})) == ["Ghi chú về followed"]
    assert _titles(an.get(FEED, params={"scope": "team"})) == [
        "Kinh doanh miền Bắc → Chăm sóc",
        "Ghi chú về team",
    ]


def test_another_teams_customers_stay_out_of_my_feed(co_crm, api):
    ids = _world(co_crm)
    chi = api(co_crm, "chi@example.com")
    assert _titles(chi.get(FEED)) == ["Ghi chú về south"]
    assert _titles(chi.get(FEED, params={"scope": "team"})) == ["Ghi chú về south"]
    an = api(co_crm, "an@example.com")
    assert an.get(FEED, params={"customer_id": ids["south"]}).status_code == 404
    assert _titles(an.get(FEED, params={"customer_id": ids["other"]})) == ["Ghi chú về other"]


def test_kinds_filter_the_feed(co_crm, api):
    _world(co_crm)
    an = api(co_crm, "an@example.com")
    kinds = an.get(f"{FEED}/kinds").json()
    assert {k["kind"] for k in kinds} == {"note", "handoff"}
    handoffs = an.get(FEED, params={"kinds": "handoff"}).json()["items"]
    assert [i["kind"] for i in handoffs] == ["handoff"]
    notes = an.get(FEED, params=[("kinds", "note")]).json()["items"]
    assert {i["kind"] for i in notes} == {"note"} and len(notes) == 3
    unknown = an.get(FEED, params={"kinds": "order"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["query", "kinds"]


def test_the_cursor_pages_through_every_entry_once(co_crm, api):
    ids = _world(co_crm)
    with co_crm.db.write() as session:
        for minute in range(20, 31):
            _note(session, ids["own"], f"Cuộc gọi {minute}", minute)
    an = api(co_crm, "an@example.com")
    seen: list[str] = []
    times: list[str] = []
    params: dict[str, object] = {"limit": 4}
    for _ in range(10):
        page = an.get(FEED, params=params).json()
        seen += [i["title"] for i in page["items"]]
        times += [i["at"] for i in page["items"]]
        if page["next_before"] is None:
            break
        assert len(page["items"]) == 4
        params = {"limit": 4, "before": page["next_before"]}
    assert len(seen) == len(set(seen)) == 15
    assert times == sorted(times, reverse=True)
    assert seen[0] == "Cuộc gọi 30" and seen[-1] == "Ghi chú về own"
    naive = an.get(FEED, params={"before": "2025-03-01T08:00:00"})
    assert naive.status_code == 422
    assert naive.json()["detail"][0]["loc"] == ["query", "before"]


def test_notes_on_records_the_user_may_not_see_are_left_out(co_crm, api):
    ids = _world(co_crm)
    with co_crm.db.write() as session:  # a note on another customer's record, filed on mine
        session.add(
            Message(
                record_type="customer",
                record_id=ids["south"],
                customer_id=ids["own"],
                kind="note",
                body="Không được thấy",
                created_at=_at(40),
            )
        )
    an = api(co_crm, "an@example.com")
    assert "Không được thấy" not in _titles(an.get(FEED))
    mai = api(co_crm, "mai@example.com")  # manager: scope team, north; the same rule applies
    assert "Không được thấy" not in _titles(mai.get(FEED, params={"customer_id": ids["own"]}))


def test_someone_with_no_customers_of_their_own_gets_an_empty_feed(co_crm, api):
    _world(co_crm)
    zahra = api(co_crm, "zahra@example.com")  # marketing: reads the feed, follows nobody
    assert zahra.get(FEED).json() == {"items": [], "next_before": None}
    admin = api(co_crm, "admin@example.com")
    assert admin.get(FEED).status_code == 200


def test_the_feed_merges_every_module_newest_first(all_crm, api):
    ids = _world(all_crm)
    an = api(all_crm, "an@example.com")
    customer = ids["own"]
    order = an.post(
        "/api/operational/orders",
        json={"customer_id": customer, "ref": "DH-001", "total_minor": 150000},
    )
    assert order.status_code == 201, order.text
    interaction = an.post(
        "/api/operational/interactions",
        json={
            "customer_id": customer,
            "kind": "call",
            "channel": "phone",
            "subject": "Gọi hỏi giá",
        },
    )
    assert interaction.status_code == 201, interaction.text
    mai = api(all_crm, "mai@example.com")
    ticket = mai.post(
        "/api/operational/tickets", json={"customer_id": customer, "subject": "Máy hỏng"}
    )
    assert ticket.status_code == 201, ticket.text
    with all_crm.db.write() as session:
        _note(session, customer, "Ghi chú mới nhất", 0, at=utcnow() + dt.timedelta(seconds=5))
    items = an.get(FEED, params={"customer_id": customer}).json()["items"]
    kinds = [i["kind"] for i in items]
    assert kinds[0] == "note" and items[0]["title"] == "Ghi chú mới nhất"
    assert {"order", "interaction", "ticket", "note"} <= set(kinds)
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)
    titles = {i["kind"]: i["title"] for i in reversed(items)}
    assert titles["order"] == "DH-001" and titles["ticket"] == "Máy hỏng"
    assert titles["interaction"] == "Gọi hỏi giá"
    only = an.get(FEED, params={"kinds": "order,ticket", "customer_id": customer}).json()
    assert {i["kind"] for i in only["items"]} == {"order", "ticket"}
    chi = api(all_crm, "chi@example.com")
    assert "DH-001" not in _titles(chi.get(FEED))


def test_the_360_panel_merges_the_customers_timeline(all_crm, api, browser):
    ids = _world(all_crm)
    an_api = api(all_crm, "an@example.com")
    an_api.post(
        "/api/operational/orders",
        json={"customer_id": ids["team"], "ref": "DH-<b>9</b>", "total_minor": 5000},
    )
    an = browser(all_crm, "an@example.com")
    panel = an.get(f"/ui/slots/collaborative.timeline/{ids['team']}")
    assert panel.status_code == 200
    assert "Across departments" in panel.text
    assert "Ghi chú về team" in panel.text and "Nhờ chăm sóc khách này" in panel.text
    assert "DH-&lt;b&gt;9&lt;/b&gt;" in panel.text
    assert "Ghi chú về own" not in panel.text
    assert an.get(f"/ui/slots/collaborative.timeline/{ids['south']}").status_code == 404
    page = an.get(f"/ui/customer/{ids['team']}")
    assert 'hx-get="/ui/slots/collaborative.timeline/' in page.text


def test_the_feed_page_loads_more_and_polls_for_new_entries(co_crm, browser):
    ids = _world(co_crm)
    with co_crm.db.write() as session:
        for minute in range(20, 55):
            _note(session, ids["own"], f"Cuộc gọi {minute}", minute)
    an = browser(co_crm, "an@example.com")
    page = an.get("/collaborative/feed")
    assert page.status_code == 200
    assert page.text.count('class="feed-entry') == 30
    assert "Cuộc gọi 54" in page.text and "Ghi chú về own" not in page.text
    assert 'hx-trigger="every 60s"' in page.text
    assert 'name="kinds" value="handoff"' in page.text
    more = re.search(r'hx-get="(/collaborative/feed/more\?[^"]+)"', page.text).group(1)
    older = an.get(more.replace("&amp;", "&"))
    assert older.status_code == 200
    assert "Ghi chú về own" in older.text and "Cuộc gọi 54" not in older.text
    assert older.text.count('class="feed-entry') == 9
    assert "/collaborative/feed/more" not in older.text
    poll = re.search(r'hx-get="(/collaborative/feed/new\?[^"]+)"', page.text).group(1)
    poll = poll.replace("&amp;", "&")
    assert an.get(poll).text.count('class="feed-entry') == 0
    with co_crm.db.write() as session:
        _note(session, ids["own"], "Vừa xảy ra", 60)
    fresh = an.get(poll)
    assert fresh.text.count('class="feed-entry') == 1 and "Vừa xảy ra" in fresh.text
    assert 'hx-trigger="every 60s"' in fresh.text  # the next poller
    filtered = an.get("/collaborative/feed?kinds=handoff")
    assert filtered.text.count('class="feed-entry') == 1
    assert 'href="/collaborative/feed"' in an.get("/").text  # the menu entry
