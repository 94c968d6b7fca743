"""Notes and threaded comments through the REST API: threads, edits, deletes, validation,
followers, and record rules (a record the user may not see answers 404 on every route)."""

from __future__ import annotations

from sqlalchemy import func, select

from plugins.collaborative.models import Follower, Mention, Message, Notification
from tests.plugins.collaborative.helpers import add_customer

AN, BINH, CHI, MAI = "an@example.com", "binh@example.com", "chi@example.com", "mai@example.com"


def _customer(crm, name: str = "Công ty Hoa Sen", owner: str = AN) -> int:
    with crm.db.write() as session:
        return add_customer(session, name, owner=crm.people[owner])


def _post(client, record_id: int, body: str, **extra):
    payload = {"record_type": "customer", "record_id": record_id, "body": body, **extra}
    return client.post("/api/collaborative/messages", json=payload)


def _count(crm, model) -> int:
    with crm.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def _loc(response) -> list:
    return response.json()["detail"][0]["loc"]


def test_replies_thread_under_their_parent(co_crm, api):
    customer = _customer(co_crm)
    an = api(co_crm, AN)
    first = _post(an, customer, "Khách hỏi báo giá")
    assert first.status_code == 201, first.text
    second = _post(an, customer, "Gọi lại thứ hai", kind="note")
    reply = _post(api(co_crm, BINH), customer, "Em gọi rồi", parent_id=first.json()["id"])
    assert reply.status_code == 201, reply.text
    assert reply.json()["parent_id"] == first.json()["id"]

    page = an.get(f"/api/collaborative/messages?record_type=customer&record_id={customer}")
    assert page.status_code == 200
    items = page.json()["items"]
    assert [m["id"] for m in items] == [second.json()["id"], first.json()["id"]]
    assert items[0]["kind"] == "note" and items[0]["replies"] == []
    assert [r["body"] for r in items[1]["replies"]] == ["Em gọi rồi"]
    assert items[1]["replies"][0]["author_name"] == "Trần Thị Bình"
    assert items[1]["author_name"] == "Nguyễn Văn An"


def test_thread_pages_with_before(co_crm, api):
    customer = _customer(co_crm)
    an = api(co_crm, AN)
    ids = [_post(an, customer, f"tin {n}").json()["id"] for n in range(3)]
    url = f"/api/collaborative/messages?record_type=customer&record_id={customer}&limit=2"
    first = an.get(url).json()
    assert [m["id"] for m in first["items"]] == [ids[2], ids[1]]
    older = an.get(f"{url}&before={first['next_before']}").json()
    assert [m["id"] for m in older["items"]] == [ids[0]]
    assert older["next_before"] is None


def test_a_reply_to_a_message_of_another_record_is_refused(co_crm, api):
    one, other = _customer(co_crm), _customer(co_crm, "Công ty Mai Vàng")
    an = api(co_crm, AN)
    parent = _post(an, one, "Trên khách một").json()["id"]
    response = _post(an, other, "Trả lời nhầm chỗ", parent_id=parent)
    assert response.status_code == 422
    assert _loc(response) == ["body", "parent_id"]
    assert _count(co_crm, Message) == 1


def test_a_reply_to_a_reply_is_refused(co_crm, api):
    customer = _customer(co_crm)
    an = api(co_crm, AN)
    parent = _post(an, customer, "Đầu").json()["id"]
    reply = _post(an, customer, "Trả lời", parent_id=parent).json()["id"]
    response = _post(an, customer, "Trả lời của trả lời", parent_id=reply)
    assert response.status_code == 422
    assert _loc(response) == ["body", "parent_id"]


def test_bad_input_names_the_field_and_changes_nothing(co_crm, api):
    customer = _customer(co_crm)
    an = api(co_crm, AN)
    empty = _post(an, customer, "   \n ")
    assert empty.status_code == 422 and _loc(empty) == ["body", "body"]
    too_long = _post(an, customer, "x" * 10_001)
    assert too_long.status_code == 422 and _loc(too_long) == ["body", "body"]
    unknown_type = an.post(
        "/api/collaborative/messages",
        json={"record_type": "spaceship", "record_id": 1, "body": "hello"},
    )
    assert unknown_type.status_code == 422 and _loc(unknown_type) == ["body", "record_type"]
    unknown_user = _post(an, customer, "Hỏi @[Ai đó](user:99999)")
    assert unknown_user.status_code == 422 and _loc(unknown_user) == ["body", "mentions"]
    unknown_team = _post(an, customer, "Hỏi", mentions=["team:4242"])
    assert unknown_team.status_code == 422 and _loc(unknown_team) == ["body", "mentions"]
    garbled = _post(an, customer, "Hỏi", mentions=["binh"])
    assert garbled.status_code == 422 and _loc(garbled) == ["body", "mentions"]
    extra = _post(an, customer, "Hỏi", colour="red")
    assert extra.status_code == 422
    assert _count(co_crm, Message) == 0
    assert _count(co_crm, Notification) == 0


def test_an_inactive_user_cannot_be_mentioned(co_crm, api):
    from core.models import User

    customer = _customer(co_crm)
    with co_crm.db.write() as session:
        session.get(User, co_crm.people[MAI]).is_active = False
    response = _post(api(co_crm, AN), customer, f"@[Mai](user:{co_crm.people[MAI]}) xem giúp")
    assert response.status_code == 422 and _loc(response) == ["body", "mentions"]


def test_a_stale_edit_is_409_with_the_current_message(co_crm, api):
    customer = _customer(co_crm)
    an = api(co_crm, AN)
    message = _post(an, customer, "Bản đầu").json()
    url = f"/api/collaborative/messages/{message['id']}"
    first = an.patch(url, json={"body": "Bản hai", "version": message["version"]})
    assert first.status_code == 200, first.text
    assert first.json()["version"] == message["version"] + 1
    assert first.json()["edited_at"] is not None
    stale = an.patch(url, json={"body": "Bản ba", "version": message["version"]})
    assert stale.status_code == 409
    assert stale.json()["current"]["body"] == "Bản hai"
    assert an.get(url).json()["body"] == "Bản hai"


def test_only_the_author_or_a_moderator_changes_a_message(co_crm, api):
    customer = _customer(co_crm)
    message = _post(api(co_crm, AN), customer, "Của An").json()
    url = f"/api/collaborative/messages/{message['id']}"
    binh = api(co_crm, BINH)  # sees the customer, is not the author
    assert binh.patch(url, json={"body": "Sửa", "version": 1}).status_code == 403
    assert binh.delete(url).status_code == 403
    chi = api(co_crm, CHI)  # does not even see the customer
    assert chi.patch(url, json={"body": "Sửa", "version": 1}).status_code == 404
    assert chi.delete(url).status_code == 404
    assert api(co_crm, AN).get(url).json()["body"] == "Của An"
    mai = api(co_crm, MAI)  # manager: moderates
    assert mai.patch(url, json={"body": "Đã sửa", "version": 1}).status_code == 200
    assert mai.delete(url).status_code == 204
    assert api(co_crm, AN).get(url).status_code == 404


def test_deleting_a_message_deletes_its_replies_and_their_notifications(co_crm, api):
    customer = _customer(co_crm)
    an = api(co_crm, AN)
    binh_id = co_crm.people[BINH]
    top = _post(an, customer, f"@[Bình](user:{binh_id}) xem").json()
    reply = _post(an, customer, f"Thêm @[Bình](user:{binh_id})", parent_id=top["id"]).json()
    assert _count(co_crm, Notification) == 2
    assert an.delete(f"/api/collaborative/messages/{top['id']}").status_code == 204
    assert an.get(f"/api/collaborative/messages/{reply['id']}").status_code == 404
    assert _count(co_crm, Message) == 0
    assert _count(co_crm, Mention) == 0
    assert _count(co_crm, Notification) == 0


def test_a_team_outside_the_owner_cannot_read_notes_through_the_api(co_crm, api):
    customer = _customer(co_crm)
    message = _post(api(co_crm, AN), customer, "Ghi chú nội bộ", kind="note").json()
    thread = f"/api/collaborative/messages?record_type=customer&record_id={customer}"
    one = f"/api/collaborative/messages/{message['id']}"
    follow = f"/api/collaborative/followers?record_type=customer&record_id={customer}"

    chi = api(co_crm, CHI)  # sales, team south
    assert chi.get(thread).status_code == 404
    assert chi.get(one).status_code == 404
    assert chi.get(follow).status_code == 404
    assert chi.put(follow).status_code == 404
    assert _post(chi, customer, "Tôi cũng muốn viết").status_code == 404
    missing = _post(chi, 999_999, "Khách không có")
    assert missing.status_code == 404  # the same answer as a hidden customer

    binh = api(co_crm, BINH)  # sales, team north: the owner's team
    assert [m["body"] for m in binh.get(thread).json()["items"]] == ["Ghi chú nội bộ"]
    assert binh.get(one).json()["kind"] == "note"


def test_messages_need_the_read_and_create_permissions(co_crm, api):
    from core import users

    customer = _customer(co_crm)
    with co_crm.db.write() as session:
        users.create_user(session, "guest@example.com", "Khách", "Password-123!", [])
    guest = api(co_crm, "guest@example.com")
    url = f"/api/collaborative/messages?record_type=customer&record_id={customer}"
    assert guest.get(url).status_code == 403
    assert _post(guest, customer, "xin chào").status_code == 403
    assert guest.get("/api/collaborative/mentionables?q=an").status_code == 403


def test_following_and_unfollowing_a_record(co_crm, api):
    customer = _customer(co_crm)
    url = f"/api/collaborative/followers?record_type=customer&record_id={customer}"
    binh = api(co_crm, BINH)
    assert binh.get(url).json() == {"items": [], "following": False}
    followed = binh.put(url)
    assert followed.status_code == 200
    assert followed.json()["following"] is True
    assert followed.json()["items"] == [
        {"id": co_crm.people[BINH], "name": "Trần Thị Bình", "reason": "manual"}
    ]
    assert binh.put(url).status_code == 200  # twice: still one row
    assert _count(co_crm, Follower) == 1
    assert binh.delete(url).json() == {"items": [], "following": False}


def test_the_author_follows_what_they_write(co_crm, api):
    customer = _customer(co_crm)
    _post(api(co_crm, AN), customer, "Tôi theo dõi khách này")
    url = f"/api/collaborative/followers?record_type=customer&record_id={customer}"
    body = api(co_crm, AN).get(url).json()
    assert body["following"] is True
    assert [(f["id"], f["reason"]) for f in body["items"]] == [(co_crm.people[AN], "author")]


def test_a_comment_on_a_ticket_with_every_module(all_crm, api):
    from plugins.operational import tickets

    customer = _customer(all_crm)
    binh_id = all_crm.people[BINH]
    with all_crm.db.write() as session:
        ticket = tickets.create(session, customer, "Máy in hỏng", assignee_id=binh_id).id
    dung = api(all_crm, "dung@example.com")  # service: sees every ticket
    response = dung.post(
        "/api/collaborative/messages",
        json={
            "record_type": "operational.ticket",
            "record_id": ticket,
            "body": f"@[Bình](user:{binh_id}) khách gọi lại",
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["customer_id"] == customer
    assert response.json()["notified"] == [binh_id]
    assert response.json()["not_notified"] == []
    url = f"/api/collaborative/messages?record_type=operational.ticket&record_id={ticket}"
    assert [m["text"] for m in api(all_crm, BINH).get(url).json()["items"]] == [
        "@Bình khách gọi lại"
    ]
    assert api(all_crm, CHI).get(url).status_code == 404
    with all_crm.db.session() as session:
        row = session.scalars(select(Notification).where(Notification.user_id == binh_id)).one()
        assert row.url == f"/ui/ticket/{ticket}#message-{response.json()['id']}"
        assert row.title == "Máy in hỏng"


def test_the_routes_are_described_in_the_openapi_document(co_crm, api):
    document = api(co_crm, AN).get("/openapi.json").json()
    paths = document["paths"]
    assert set(paths["/api/collaborative/messages"]) == {"get", "post"}
    assert set(paths["/api/collaborative/messages/{message_id}"]) == {"get", "patch", "delete"}
    assert set(paths["/api/collaborative/followers"]) == {"get", "put", "delete"}
    assert "/api/collaborative/mentionables" in paths
    assert document["components"]["schemas"]["MessageIn"]["additionalProperties"] is False
