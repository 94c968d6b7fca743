"""The "Notes and comments" panel on record pages and its htmx forms under
``/collaborative/chatter/``: what it shows, what it escapes, who may see it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from plugins.collaborative.models import Follower, Message, Notification
from tests.plugins.collaborative.helpers import add_customer

AN, BINH, CHI = "an@example.com", "binh@example.com", "chi@example.com"
HTMX = {"HX-Request": "true"}
SLOT = "/ui/slots/collaborative.chatter.customer/{id}"
PANEL = "/collaborative/chatter/customer/{id}"


def _customer(crm) -> int:
    with crm.db.write() as session:
        return add_customer(session, "Công ty Hoa Sen", owner=crm.people[AN])


def _count(crm, model, *where) -> int:
    with crm.db.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _post(client, customer: int, body: str, **form):
    url = PANEL.format(id=customer) + "/messages"
    return client.post(url, {"body": body, **form}, headers=HTMX)


def test_the_panel_is_a_slot_of_every_record_type_with_a_page(all_crm, browser):
    from core.web.app import create_app

    app = create_app(all_crm)
    slots = {
        s.id: s for s in app.state.ui.registry.slots if s.id.startswith("collaborative.chatter.")
    }
    assert slots["collaborative.chatter.customer"].resource == "customer"
    assert slots["collaborative.chatter.operational.ticket"].resource == "ticket"
    assert slots["collaborative.chatter.operational.opportunity"].resource == "opportunity"
    assert all(s.permission == "collaborative.message:read" for s in slots.values())
    page = browser(all_crm, BINH).get(f"/ui/customer/{_customer(all_crm)}")
    assert 'hx-get="/ui/slots/collaborative.chatter.customer/' in page.text


def test_the_slot_shows_the_thread_and_escapes_bodies(co_crm, api, browser):
    customer = _customer(co_crm)
    binh_id = co_crm.people[BINH]
    an = api(co_crm, AN)
    top = an.post(
        "/api/collaborative/messages",
        json={
            "record_type": "customer",
            "record_id": customer,
            "body": f"<img src=x onerror=alert(1)> hỏi @[Bình](user:{binh_id})",
        },
    ).json()
    an.post(
        "/api/collaborative/messages",
        json={
            "record_type": "customer",
            "record_id": customer,
            "body": "Đã gọi <script>alert(2)</script>",
            "parent_id": top["id"],
            "kind": "note",
        },
    )
    page = browser(co_crm, BINH).get(SLOT.format(id=customer))
    assert page.status_code == 200
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<img src=x" not in page.text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page.text
    assert "<script>alert" not in page.text
    assert '<span class="mention" data-mention="user:' in page.text
    assert "@Trần Thị Bình</span>" in page.text  # the current name, not the typed label
    assert f'id="message-{top["id"]}"' in page.text
    assert 'class="message message-note reply"' in page.text
    assert "data-mentions" in page.text


def test_a_team_outside_the_owner_gets_404_from_the_slot_and_the_panel(co_crm, api, browser):
    customer = _customer(co_crm)
    message = api(co_crm, AN).post(
        "/api/collaborative/messages",
        json={"record_type": "customer", "record_id": customer, "body": "Bí mật", "kind": "note"},
    )
    message_id = message.json()["id"]
    chi = browser(co_crm, CHI)
    panel = PANEL.format(id=customer)
    assert chi.get(SLOT.format(id=customer)).status_code == 404
    assert chi.get(panel).status_code == 404
    assert chi.get(panel, headers={**HTMX, "Accept": "text/html"}).status_code == 404
    assert _post(chi, customer, "Viết thử").status_code == 404
    for action in ("follow", "unfollow"):
        assert chi.post(f"{panel}/{action}", headers=HTMX).status_code == 404
    edit = chi.post(
        f"{panel}/messages/{message_id}/edit", {"body": "x", "version": "1"}, headers=HTMX
    )
    assert edit.status_code == 404
    assert chi.post(f"{panel}/messages/{message_id}/delete", headers=HTMX).status_code == 404
    assert "Bí mật" not in chi.get(panel).text
    assert _count(co_crm, Message) == 1
    assert _count(co_crm, Follower, Follower.user_id == co_crm.people[CHI]) == 0

    binh = browser(co_crm, BINH)
    assert "Bí mật" in binh.get(SLOT.format(id=customer)).text
    assert "Bí mật" in binh.get(panel).text


def test_posting_with_htmx_answers_the_refreshed_panel_and_notifies(co_crm, browser):
    customer = _customer(co_crm)
    binh_id = co_crm.people[BINH]
    an = browser(co_crm, AN)
    response = _post(an, customer, f"Nhờ @[Bình](user:{binh_id}) gọi khách")
    assert response.status_code == 200
    assert response.text.lstrip().startswith(
        f'<section class="chatter" id="chatter-customer-{customer}"'
    )
    assert "@Trần Thị Bình</span>" in response.text
    assert ">Unfollow<" in response.text  # the author now follows the customer
    with co_crm.db.session() as session:
        told = session.scalars(select(Notification.user_id)).all()
    assert told == [binh_id]


def test_mentioning_someone_who_cannot_see_it_says_so(co_crm, browser):
    customer = _customer(co_crm)
    chi_id = co_crm.people[CHI]
    response = _post(browser(co_crm, AN), customer, f"@[Chi](user:{chi_id}) xem", kind="note")
    assert response.status_code == 200
    assert "Not notified" in response.text and "Lê Minh Chi" in response.text
    assert _count(co_crm, Notification) == 0


def test_a_plain_form_post_goes_back_to_the_record(co_crm, browser):
    customer = _customer(co_crm)
    response = browser(co_crm, AN).post(PANEL.format(id=customer) + "/messages", {"body": "Ok"})
    assert response.status_code == 303
    message_id = _only_message(co_crm)
    assert response.headers["location"] == f"/ui/customer/{customer}#message-{message_id}"


def _only_message(crm) -> int:
    with crm.db.session() as session:
        return session.scalars(select(Message.id)).one()


def test_an_empty_body_is_shown_as_an_error_and_keeps_nothing(co_crm, browser):
    customer = _customer(co_crm)
    an = browser(co_crm, AN)
    with_htmx = _post(an, customer, "   ")
    assert with_htmx.status_code == 200  # htmx swaps 2xx answers only
    assert 'role="alert"' in with_htmx.text and "Message: write something" in with_htmx.text
    plain = an.post(PANEL.format(id=customer) + "/messages", {"body": ""})
    assert plain.status_code == 422
    assert 'role="alert"' in plain.text
    assert _count(co_crm, Message) == 0


def test_reply_edit_and_delete_through_the_panel(co_crm, browser):
    customer = _customer(co_crm)
    an = browser(co_crm, AN)
    _post(an, customer, "Câu hỏi đầu")
    top = _only_message(co_crm)
    reply = _post(an, customer, "Trả lời", parent_id=str(top))
    assert reply.status_code == 200
    with co_crm.db.session() as session:
        parents = session.scalars(select(Message.parent_id).order_by(Message.id)).all()
    assert parents == [None, top]

    panel = PANEL.format(id=customer)
    edited = an.post(
        f"{panel}/messages/{top}/edit", {"body": "Câu hỏi đã sửa", "version": "1"}, headers=HTMX
    )
    assert edited.status_code == 200 and "Câu hỏi đã sửa" in edited.text
    stale = an.post(f"{panel}/messages/{top}/edit", {"body": "Cũ", "version": "1"}, headers=HTMX)
    assert stale.status_code == 200 and "Someone changed this message" in stale.text
    assert "Câu hỏi đã sửa" in stale.text

    binh = browser(co_crm, BINH)
    forbidden = binh.post(f"{panel}/messages/{top}/delete", headers=HTMX)
    assert forbidden.status_code == 403
    assert an.post(f"{panel}/messages/{top}/delete", headers=HTMX).status_code == 200
    assert _count(co_crm, Message) == 0


def test_a_message_of_another_record_cannot_be_changed_through_this_panel(co_crm, browser):
    customer, other = _customer(co_crm), _customer(co_crm)
    an = browser(co_crm, AN)
    _post(an, other, "Trên khách khác")
    message_id = _only_message(co_crm)
    url = PANEL.format(id=customer) + f"/messages/{message_id}/delete"
    assert an.post(url, headers=HTMX).status_code == 404
    assert _count(co_crm, Message) == 1


def test_follow_and_unfollow_buttons(co_crm, browser):
    customer = _customer(co_crm)
    binh = browser(co_crm, BINH)
    panel = PANEL.format(id=customer)
    followed = binh.post(f"{panel}/follow", headers=HTMX)
    assert followed.status_code == 200 and ">Unfollow<" in followed.text
    assert _count(co_crm, Follower, Follower.user_id == co_crm.people[BINH]) == 1
    unfollowed = binh.post(f"{panel}/unfollow", headers=HTMX)
    assert unfollowed.status_code == 200 and ">Follow<" in unfollowed.text
    assert _count(co_crm, Follower) == 0


def test_forms_need_the_csrf_token(co_crm, browser):
    customer = _customer(co_crm)
    an = browser(co_crm, AN)
    response = an.client.post(
        PANEL.format(id=customer) + "/messages",
        data={"body": "Giả mạo"},
        headers={"Origin": "http://testserver", **HTMX},
    )
    assert response.status_code == 403
    assert _count(co_crm, Message) == 0


def test_the_autocomplete_script_builds_no_html_from_text():
    script = (
        Path(__file__).resolve().parents[3] / "plugins/collaborative/static/chatter.js"
    ).read_text()
    assert "textarea[data-mentions]" in script
    assert "/api/collaborative/mentionables?q=" in script
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function"):
        assert forbidden not in script
