"""@mentions: who is told (once), who follows, who is reported as unable to see the record; the
autocomplete's search; how mentions render."""

from __future__ import annotations

from sqlalchemy import func, select

from core import auth, users
from plugins.collaborative import messages
from plugins.collaborative.models import Follower, Mention, Message, Notification
from tests.plugins.collaborative.helpers import PASSWORD, add_customer

AN, BINH, CHI, DUNG, MAI = (
    "an@example.com",
    "binh@example.com",
    "chi@example.com",
    "dung@example.com",
    "mai@example.com",
)


def _customer(crm, owner: str = AN) -> int:
    with crm.db.write() as session:
        return add_customer(session, "Công ty Hoa Sen", owner=crm.people[owner])


def _post(crm, email: str, record_id: int, body: str, **options) -> messages.Posted:
    with crm.db.write() as session:
        user = auth.signed_in_user(session, crm.people[email])
        posted = messages.post(crm, session, user, "customer", record_id, body, **options)
        session.expunge(posted.message)
        return posted


def _follow(crm, email: str, record_id: int) -> None:
    from plugins.collaborative import followers

    with crm.db.write() as session:
        followers.follow(session, "customer", record_id, crm.people[email], "manual")


def _told(crm) -> dict[int, list[tuple[str, str]]]:
    """Each user's notifications as (key, kind)."""
    found: dict[int, list[tuple[str, str]]] = {}
    with crm.db.session() as session:
        for row in session.scalars(select(Notification).order_by(Notification.id)):
            found.setdefault(row.user_id, []).append((row.key, row.kind))
    return found


def test_mentions_of_a_user_and_their_team_and_following_notify_once(co_crm):
    people = co_crm.people
    customer = _customer(co_crm)
    _follow(co_crm, BINH, customer)
    _follow(co_crm, DUNG, customer)
    body = (
        f"@[Bình](user:{people[BINH]}) và @[Bình](user:{people[BINH]}) cùng "
        f"@[Miền Bắc](team:{people['team:north']}) xem giúp"
    )
    posted = _post(co_crm, AN, customer, body)
    key = f"message:{posted.message.id}"
    told = _told(co_crm)
    assert told[people[BINH]] == [(key, "mention")]  # by name, by team, as follower: once
    assert told[people[MAI]] == [(key, "mention")]  # north through the team
    assert told[people[DUNG]] == [(key, "comment")]  # a follower of the customer
    assert people[AN] not in told  # the author is in team north, and is not told
    assert people[CHI] not in told
    assert sorted(posted.notified) == sorted([people[BINH], people[MAI], people[DUNG]])
    assert posted.not_notified == []
    with co_crm.db.session() as session:
        stored = session.execute(
            select(Mention.user_id, Mention.team_id).where(Mention.message_id == posted.message.id)
        ).all()
    assert sorted(stored, key=str) == sorted(
        [(people[BINH], None), (None, people["team:north"])], key=str
    )


def test_notes_tell_only_the_mentioned_comments_tell_followers(co_crm):
    people = co_crm.people
    customer = _customer(co_crm)
    _follow(co_crm, DUNG, customer)
    note = _post(co_crm, AN, customer, f"@[Mai](user:{people[MAI]}) nội bộ", kind="note")
    assert _told(co_crm) == {people[MAI]: [(f"message:{note.message.id}", "mention")]}
    comment = _post(co_crm, AN, customer, "Khách đã ký hợp đồng")
    told = _told(co_crm)
    assert told[people[DUNG]] == [(f"message:{comment.message.id}", "comment")]
    assert told[people[MAI]] == [  # mentioned in the note, she follows the customer since
        (f"message:{note.message.id}", "mention"),
        (f"message:{comment.message.id}", "comment"),
    ]
    assert people[AN] not in told


def test_a_mentioned_user_who_cannot_see_the_record_is_reported_not_told(co_crm, api):
    people = co_crm.people
    customer = _customer(co_crm)
    response = api(co_crm, AN).post(
        "/api/collaborative/messages",
        json={
            "record_type": "customer",
            "record_id": customer,
            "body": f"@[Chi](user:{people[CHI]}) và @[Bình](user:{people[BINH]}) xem",
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["not_notified"] == [{"id": people[CHI], "name": "Lê Minh Chi"}]
    assert response.json()["notified"] == [people[BINH]]
    assert set(_told(co_crm)) == {people[BINH]}
    with co_crm.db.session() as session:
        following = dict(session.execute(select(Follower.user_id, Follower.reason)).all())
    assert following == {people[AN]: "author", people[BINH]: "mentioned"}


def test_members_of_a_mentioned_team_who_cannot_see_it_are_reported(co_crm):
    people = co_crm.people
    customer = _customer(co_crm)
    posted = _post(co_crm, AN, customer, f"@[Miền Nam](team:{people['team:south']}) hỗ trợ")
    assert posted.not_notified == [people[CHI]]
    assert posted.notified == []
    assert _told(co_crm) == {}


def test_explicit_mentions_from_api_clients(co_crm, api):
    people = co_crm.people
    customer = _customer(co_crm)
    response = api(co_crm, AN).post(
        "/api/collaborative/messages",
        json={
            "record_type": "customer",
            "record_id": customer,
            "body": "Xem giúp",
            "kind": "note",
            "mentions": [f"user:{people[DUNG]}", f"team:{people['team:north']}"],
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["mentions"] == [f"user:{people[DUNG]}", f"team:{people['team:north']}"]
    assert sorted(_told(co_crm)) == sorted([people[DUNG], people[BINH], people[MAI]])


def test_an_edit_tells_only_the_newly_mentioned(co_crm, api):
    people = co_crm.people
    customer = _customer(co_crm)
    an = api(co_crm, AN)
    first = an.post(
        "/api/collaborative/messages",
        json={
            "record_type": "customer",
            "record_id": customer,
            "body": f"@[Bình](user:{people[BINH]}) xem",
        },
    ).json()
    edited = an.patch(
        f"/api/collaborative/messages/{first['id']}",
        json={
            "body": f"@[Bình](user:{people[BINH]}) và @[Dũng](user:{people[DUNG]}) xem",
            "version": first["version"],
        },
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["notified"] == [people[DUNG]]
    told = _told(co_crm)
    assert told[people[BINH]] == [(f"message:{first['id']}", "mention")]
    assert told[people[DUNG]] == [(f"message:{first['id']}:v{first['version'] + 1}", "mention")]


def test_the_notification_carries_the_record_and_a_plain_excerpt(co_crm):
    people = co_crm.people
    customer = _customer(co_crm)
    posted = _post(co_crm, AN, customer, f"Chào @[Bình](user:{people[BINH]}), <b>gọi</b> khách")
    with co_crm.db.session() as session:
        row = session.scalars(select(Notification)).one()
    assert row.label == "mentioned you"
    assert row.title == "Công ty Hoa Sen"
    assert row.body == "Chào @Bình, <b>gọi</b> khách"
    assert row.url == f"/ui/customer/{customer}#message-{posted.message.id}"
    assert (row.record_type, row.record_id, row.customer_id) == ("customer", customer, customer)
    assert row.actor_id == people[AN]


def test_render_body_escapes_everything_and_marks_mentions(co_crm):
    people = co_crm.people
    message = Message(
        body=f'<img src=x onerror=alert(1)> @[<b>x</b>](user:{people[BINH]})\n"ok" & done'
    )
    html = str(messages.render_body(message, {}))
    assert html == (
        "&lt;img src=x onerror=alert(1)&gt; "
        f'<span class="mention" data-mention="user:{people[BINH]}">@&lt;b&gt;x&lt;/b&gt;</span>'
        "<br>&#34;ok&#34; &amp; done"
    )
    named = str(messages.render_body(message, {f"user:{people[BINH]}": "Trần Thị Bình"}))
    assert "@Trần Thị Bình</span>" in named


def _labels(crm, q: str) -> list[str]:
    with crm.db.session() as session:
        return [item["label"] for item in messages.mentionables(session, q)]


def test_mentionables_ignore_case_and_diacritics(co_crm):
    assert _labels(co_crm, "nguyen an") == ["Nguyễn Văn An"]
    assert "Nguyễn Văn An" in _labels(co_crm, "an")
    assert _labels(co_crm, "TRAN BINH") == ["Trần Thị Bình"]
    assert _labels(co_crm, "mien bac") == ["Kinh doanh miền Bắc"]
    assert _labels(co_crm, "زهرا") == ["زهرا احمدی"]
    assert _labels(co_crm, "nobody here") == []


def test_mentionables_leave_out_partner_contacts_and_inactive_users(co_crm):
    from core.models import User

    with co_crm.db.write() as session:
        users.create_user(session, "ana@partner.example", "Anh Đối Tác", PASSWORD, ["partner"])
        session.get(User, co_crm.people[AN]).is_active = False
    assert _labels(co_crm, "an") == []


def test_mentionables_through_the_api_give_tokens(co_crm, api):
    response = api(co_crm, BINH).get("/api/collaborative/mentionables?q=nguy%E1%BB%85n")
    assert response.status_code == 200
    assert response.json() == [
        {
            "type": "user",
            "id": co_crm.people[AN],
            "label": "Nguyễn Văn An",
            "token": f"@[Nguyễn Văn An](user:{co_crm.people[AN]})",
        }
    ]
    team = api(co_crm, BINH).get("/api/collaborative/mentionables?q=cham").json()
    assert team == [
        {
            "type": "team",
            "id": co_crm.people["team:care"],
            "label": "Chăm sóc",
            "token": f"@[Chăm sóc](team:{co_crm.people['team:care']})",
        }
    ]


def test_a_partner_contact_finds_only_the_people_on_their_customers(co_crm, api):
    from plugins.collaborative.models import AccountTeam, Share

    with co_crm.db.write() as session:
        partner = users.create_user(
            session, "ana@partner.example", "Anh Đối Tác", PASSWORD, ["partner"]
        )
        session.flush()
        customer = add_customer(session, "Công ty Sen Vàng", owner=co_crm.people[AN])
        session.add(AccountTeam(customer_id=customer, team_id=co_crm.people["team:north"]))
        session.add(Share(customer_id=customer, user_id=partner.id))
    client = api(co_crm, "ana@partner.example")
    found = {e["label"] for e in client.get("/api/collaborative/mentionables?q=").json()}
    # the north team works on the shared customer; the south and care teams do not
    assert found == {"Nguyễn Văn An", "Trần Thị Bình", "Hoàng Mai"}
    assert client.get("/api/collaborative/mentionables?q=chi").json() == []
    assert client.get("/api/collaborative/mentionables?q=mien").json() == []


def _partner_on_shared_customer(co_crm) -> tuple[int, int]:
    """A partner contact and the north customer shared with them."""
    from plugins.collaborative.models import AccountTeam, Share

    with co_crm.db.write() as session:
        partner = users.create_user(
            session, "ana@partner.example", "Anh Đối Tác", PASSWORD, ["partner"]
        )
        session.flush()
        customer = add_customer(session, "Công ty Sen Vàng", owner=co_crm.people[AN])
        session.add(AccountTeam(customer_id=customer, team_id=co_crm.people["team:north"]))
        session.add(Share(customer_id=customer, user_id=partner.id))
    return partner.id, customer


def test_a_partner_contact_reads_comments_but_not_the_staffs_internal_notes(co_crm, api):
    partner, customer = _partner_on_shared_customer(co_crm)
    staff = api(co_crm, AN)
    where = {"record_type": "customer", "record_id": customer}
    note = staff.post(
        "/api/collaborative/messages", json={**where, "body": "Giá sàn 5%", "kind": "note"}
    ).json()["id"]
    told = staff.post(
        "/api/collaborative/messages",
        json={**where, "body": "Nhờ anh xem", "kind": "note", "mentions": [f"user:{partner}"]},
    ).json()["id"]
    comment = staff.post("/api/collaborative/messages", json={**where, "body": "Chào anh"}).json()
    client = api(co_crm, "ana@partner.example")
    seen = client.get("/api/collaborative/messages", params=where).json()
    ids = {item["id"] for item in seen["items"]}
    assert ids == {told, comment["id"]}
    assert client.get(f"/api/collaborative/messages/{note}").status_code == 404
    assert api(co_crm, BINH).get(f"/api/collaborative/messages/{note}").status_code == 200


def test_a_partner_contact_mentions_only_the_people_on_their_customers(co_crm, api):
    _, customer = _partner_on_shared_customer(co_crm)
    client = api(co_crm, "ana@partner.example")
    where = {"record_type": "customer", "record_id": customer, "body": "Xin chào"}
    ok = client.post(
        "/api/collaborative/messages", json={**where, "mentions": [f"user:{co_crm.people[AN]}"]}
    )
    assert ok.status_code == 201, ok.text
    for refused in (f"user:{co_crm.people['chi@example.com']}", "user:9999", "team:1"):
        response = client.post("/api/collaborative/messages", json={**where, "mentions": [refused]})
        assert response.status_code == 422
        # the same answer for a stranger, an unknown id and a team: nothing to enumerate
        assert response.json()["detail"][0]["msg"].endswith("working on your customers")
    with co_crm.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1
