"""The inbox: the API (list, count, read, read-all, preferences), the pages with htmx, and the
record rules (a notification about a customer the user can no longer see is hidden)."""

from __future__ import annotations

from sqlalchemy import select, update

from core.customers.models import Customer
from plugins.collaborative import inbox
from plugins.collaborative.models import Notification
from plugins.collaborative.notify import Subject, notify
from tests.plugins.collaborative.helpers import add_customer

AN, BINH, CHI = "an@example.com", "binh@example.com", "chi@example.com"
COUNT = "/api/collaborative/notifications/count"


def _customer(crm, name: str = "Công ty Hoa Sen", owner: str = AN) -> int:
    with crm.db.write() as session:
        return add_customer(session, name, owner=crm.people[owner])


def _tell(crm, email: str, key: str, customer_id: int | None = None, actor: str = AN, **kw):
    """Notify ``email`` about ``key`` (about the customer when given); the new row's id."""
    subject = Subject(
        key=key,
        kind=kw.pop("kind", "mention"),
        label=kw.pop("label", "Mentioned you"),
        title=kw.pop("title", "Công ty Hoa Sen"),
        url=f"/ui/customer/{customer_id}" if customer_id else "/collaborative/inbox",
        record_type="customer" if customer_id else None,
        record_id=customer_id,
        customer_id=customer_id,
        actor_id=crm.people[actor],
        **kw,
    )
    with crm.db.write() as session:
        assert notify(crm, session, [crm.people[email]], subject) == [crm.people[email]]
    with crm.db.session() as session:
        return session.scalar(
            select(Notification.id).where(
                Notification.user_id == crm.people[email], Notification.key == key
            )
        )


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_count_read_and_read_all_through_the_api(co_crm, api):
    customer = _customer(co_crm)
    first = _tell(co_crm, BINH, "message:1", customer)
    second = _tell(co_crm, BINH, "message:2", customer, title="Đơn hàng #2")
    third = _tell(co_crm, BINH, "message:3")
    binh = api(co_crm, BINH)
    assert binh.get(COUNT).json() == {"count": 3}

    listed = binh.get("/api/collaborative/notifications").json()["items"]
    assert [i["id"] for i in listed] == [third, second, first]
    assert listed[1]["title"] == "Đơn hàng #2"
    assert listed[1]["actor_name"] == "Nguyễn Văn An"
    assert listed[1]["url"] == f"/ui/customer/{customer}"
    assert all(i["unread"] for i in listed)

    read = binh.post(f"/api/collaborative/notifications/{second}/read")
    assert read.status_code == 200, read.text
    assert read.json()["unread"] is False and read.json()["read_at"]
    assert binh.post(f"/api/collaborative/notifications/{second}/read").status_code == 200
    assert binh.get(COUNT).json() == {"count": 2}
    unread = binh.get("/api/collaborative/notifications", params={"unread": "true"})
    assert _ids(unread) == [third, first]

    assert binh.post("/api/collaborative/notifications/read-all").json() == {"marked": 2}
    assert binh.get(COUNT).json() == {"count": 0}
    assert _ids(binh.get("/api/collaborative/notifications", params={"unread": "true"})) == []


def test_a_user_never_reaches_another_users_notifications(co_crm, api):
    customer = _customer(co_crm)
    hers = _tell(co_crm, BINH, "message:1", customer)
    mine = _tell(co_crm, CHI, "message:9", actor=BINH)
    chi = api(co_crm, CHI)
    assert _ids(chi.get("/api/collaborative/notifications")) == [mine]
    assert chi.post(f"/api/collaborative/notifications/{hers}/read").status_code == 404
    assert chi.post("/api/collaborative/notifications/999999/read").status_code == 404
    assert chi.post("/api/collaborative/notifications/read-all").json() == {"marked": 1}
    binh = api(co_crm, BINH)
    assert binh.get(COUNT).json() == {"count": 1}  # chi's read-all left binh's alone


def test_pages_newest_first_with_before_and_limit(co_crm, api):
    ids = [_tell(co_crm, BINH, f"message:{n}") for n in range(5)]
    binh = api(co_crm, BINH)
    page = binh.get("/api/collaborative/notifications", params={"limit": 2}).json()
    assert [i["id"] for i in page["items"]] == [ids[4], ids[3]]
    assert page["next_before"] == ids[3]
    rest = binh.get(
        "/api/collaborative/notifications", params={"limit": 5, "before": page["next_before"]}
    ).json()
    assert [i["id"] for i in rest["items"]] == [ids[2], ids[1], ids[0]]
    assert rest["next_before"] is None
    bad = binh.get("/api/collaborative/notifications", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "limit"]


def test_a_customer_the_user_can_no_longer_see_hides_its_notifications(co_crm, api):
    customer = _customer(co_crm, "Khách hàng Sen Vàng", owner=AN)
    about = _tell(co_crm, BINH, "message:1", customer)
    general = _tell(co_crm, BINH, "message:2")
    binh = api(co_crm, BINH)
    assert binh.get(COUNT).json() == {"count": 2}

    with co_crm.db.write() as session:  # the customer moves to the south team's chi
        session.execute(
            update(Customer).where(Customer.id == customer).values(owner_id=co_crm.people[CHI])
        )
    assert binh.get(COUNT).json() == {"count": 1}
    assert _ids(binh.get("/api/collaborative/notifications")) == [general]
    assert binh.post(f"/api/collaborative/notifications/{about}/read").status_code == 404
    assert binh.post("/api/collaborative/notifications/read-all").json() == {"marked": 1}
    with co_crm.db.session() as session:
        assert session.get(Notification, about).read_at is None


def test_preferences_through_the_api_name_the_bad_field(co_crm, api):
    binh = api(co_crm, BINH)
    assert binh.get("/api/collaborative/preferences").json() == {
        "in_app": True,
        "email": "immediate",
    }
    bad = binh.put("/api/collaborative/preferences", json={"email": "weekly"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "email"]
    bad = binh.put("/api/collaborative/preferences", json={"in_app": "sometimes"})
    assert bad.json()["detail"][0]["loc"] == ["body", "in_app"]
    assert binh.get("/api/collaborative/preferences").json()["email"] == "immediate"

    saved = binh.put("/api/collaborative/preferences", json={"email": "digest"})
    assert saved.json() == {"in_app": True, "email": "digest"}
    saved = binh.put("/api/collaborative/preferences", json={"in_app": False})
    assert saved.json() == {"in_app": False, "email": "digest"}


def test_preferences_decide_how_new_notifications_arrive(co_crm, api):
    binh = api(co_crm, BINH)
    binh.put("/api/collaborative/preferences", json={"in_app": False, "email": "off"})
    quiet = _tell(co_crm, BINH, "message:1")
    binh.put("/api/collaborative/preferences", json={"in_app": True, "email": "digest"})
    daily = _tell(co_crm, BINH, "message:2")
    with co_crm.db.session() as session:
        row = session.get(Notification, quiet)
        assert row.read_at is not None and row.email_status == "none"
        assert session.get(Notification, daily).email_status == "digest"
    assert binh.get(COUNT).json() == {"count": 1}  # in-app off: arrived read, no badge

    binh.put("/api/collaborative/preferences", json={"email": "off"})
    with co_crm.db.session() as session:  # waiting for the digest, now not to be mailed
        assert session.get(Notification, daily).email_status == "none"


def test_notifications_need_the_permission(co_crm, api):
    from core import users

    with co_crm.db.write() as session:
        users.create_user(session, "guest@example.com", "Khách", "Password-123!", [])
    guest = api(co_crm, "guest@example.com")
    assert guest.get(COUNT).status_code == 403
    assert guest.get("/api/collaborative/notifications").status_code == 403
    assert guest.put("/api/collaborative/preferences", json={"email": "off"}).status_code == 403


def test_the_inbox_page_marks_read_with_htmx_and_polls_its_list(co_crm, browser):
    customer = _customer(co_crm)
    first = _tell(co_crm, BINH, "message:1", customer, title="Công ty <Hoa Sen>")
    second = _tell(co_crm, BINH, "message:2", actor=CHI, label="Hand-off overdue")
    page = browser(co_crm, BINH)
    html = page.get("/collaborative/inbox").text
    assert 'data-badge="/api/collaborative/notifications/count"' in html
    assert 'hx-trigger="every 30s"' in html and 'hx-get="/collaborative/inbox/list"' in html
    assert "data-refresh-badges" in html
    assert f'id="notification-{first}"' in html and 'class="notification unread"' in html
    assert f'href="/ui/customer/{customer}"' in html
    assert "Công ty &lt;Hoa Sen&gt;" in html and "<Hoa Sen>" not in html
    assert "Lê Minh Chi" in html

    fragment = page.post(f"/collaborative/inbox/{first}/read", headers={"HX-Request": "true"})
    assert fragment.status_code == 200, fragment.text
    assert fragment.text.lstrip().startswith(f'<li class="notification" id="notification-{first}"')
    assert "<html" not in fragment.text and "data-mark-read" not in fragment.text
    assert 'id="inbox-count" data-unread="1" hx-swap-oob="true"' in fragment.text
    assert page.get(COUNT).json() == {"count": 1}

    polled = page.get("/collaborative/inbox/list", headers={"HX-Request": "true"})
    assert "<html" not in polled.text and f'id="notification-{second}"' in polled.text
    assert 'data-unread="1"' in polled.text

    everything = page.post("/collaborative/inbox/read-all", headers={"HX-Request": "true"})
    assert 'data-unread="0"' in everything.text
    assert 'class="notification unread"' not in everything.text
    assert page.get(COUNT).json() == {"count": 0}
    assert page.post("/collaborative/inbox/999999/read").status_code == 404


def test_the_inbox_page_without_htmx_redirects_back(co_crm, browser):
    first = _tell(co_crm, BINH, "message:1")
    page = browser(co_crm, BINH)
    response = page.post(f"/collaborative/inbox/{first}/read")
    assert response.status_code == 303 and response.headers["location"] == "/collaborative/inbox"
    _tell(co_crm, BINH, "message:2")
    response = page.post("/collaborative/inbox/read-all")
    assert response.status_code == 303
    assert "All notifications are marked read." in page.get("/collaborative/inbox").text
    with co_crm.db.session() as session:
        assert inbox.unread_count(co_crm, session, _signed_in(co_crm, BINH)) == 0


def test_the_preferences_page_saves_and_refuses_bad_values(co_crm, browser):
    page = browser(co_crm, BINH)
    html = page.get("/collaborative/preferences").text
    assert 'name="in_app" value="1" checked' in html
    assert 'id="email-immediate" name="email" value="immediate" checked' in html

    saved = page.post("/collaborative/preferences", {"email": "digest"})
    assert saved.status_code == 303
    html = page.get(saved.headers["location"]).text
    assert "Your notification preferences are saved." in html
    assert 'id="email-digest" name="email" value="digest" checked' in html
    assert 'name="in_app" value="1" checked' not in html

    refused = page.post("/collaborative/preferences", {"in_app": "1", "email": "hourly"})
    assert refused.status_code == 422 and 'id="email-error"' in refused.text
    with co_crm.db.session() as session:
        assert inbox.get_preferences(session, co_crm.people[BINH]) == {
            "in_app": False,
            "email": "digest",
        }


def _signed_in(crm, email: str):
    from core import auth

    with crm.db.session() as session:
        return auth.signed_in_user(session, crm.people[email])
