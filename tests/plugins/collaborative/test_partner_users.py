"""Partner contacts with a sign-in: invited with a one-time password, they see exactly the
customers shared with them, through every route, and nothing once the share ends."""

from __future__ import annotations

import csv
import io

from sqlalchemy import insert, select

from core.models import RolePermission, User
from core.normalize import search_key
from core.web.app import create_app
from tests.plugins.collaborative.helpers import Api, add_customer

BASE = "/api/collaborative"
HX = {"HX-Request": "true"}


def _customer(session, name: str, owner: int | None) -> int:
    return add_customer(session, name, owner=owner, search_key=search_key(name))


def _setup(crm, api):
    """Three customers of the north team and the pool; a partner with an invited contact."""
    an = crm.people["an@example.com"]
    with crm.db.write() as session:
        shared = _customer(session, "Nguyễn Thị Chia Sẻ", an)
        other = _customer(session, "Trần Văn Riêng", an)
        pool = _customer(session, "Khách Chưa Giao", None)
    mai = api(crm, "mai@example.com")
    partner = mai.post(f"{BASE}/partners", json={"name": "Đại lý Sao Mai", "kind": "reseller"})
    contact = mai.post(
        f"{BASE}/partners/{partner.json()['id']}/contacts",
        json={"name": "Lê Văn Đối Tác", "email": "doitac@saomai.vn"},
    ).json()
    invited = mai.post(f"{BASE}/partners/{partner.json()['id']}/contacts/{contact['id']}/invite")
    assert invited.status_code == 201, invited.text
    assert invited.headers["cache-control"] == "no-store"
    return {
        "shared": shared,
        "other": other,
        "pool": pool,
        "mai": mai,
        "partner": partner.json(),
        "contact": contact,
        "invitation": invited.json(),
    }


def _sign_in(crm, email: str, password: str) -> Api:
    """An API client signed in with a password other than the test people's."""
    return Api(create_app(crm), email, password)


def _partner_client(crm, setup) -> Api:
    invitation = setup["invitation"]
    return _sign_in(crm, invitation["email"], invitation["password"])


def _share(setup, customer_id: int):
    return setup["mai"].post(
        f"{BASE}/shares",
        json={"customer_id": customer_id, "user_id": setup["invitation"]["user_id"]},
    )


def test_an_invitation_creates_a_partner_user_and_shows_the_password_once(co_crm, api):
    setup = _setup(co_crm, api)
    invitation = setup["invitation"]
    assert invitation["email"] == "doitac@saomai.vn"
    assert len(invitation["password"]) >= 12
    with co_crm.db.session() as session:
        user = session.get(User, invitation["user_id"])
        assert user.role_names == ["partner"]
        assert invitation["password"] not in user.password_hash
    partner_id, contact_id = setup["partner"]["id"], setup["contact"]["id"]
    again = setup["mai"].post(f"{BASE}/partners/{partner_id}/contacts/{contact_id}/invite")
    assert again.status_code == 409
    contacts = setup["mai"].get(f"{BASE}/partners/{partner_id}/contacts").json()
    assert contacts[0]["user_id"] == invitation["user_id"]


def test_a_contact_without_an_e_mail_cannot_be_invited(co_crm, api):
    mai = api(co_crm, "mai@example.com")
    partner = mai.post(f"{BASE}/partners", json={"name": "Hòa Bình", "kind": "supplier"}).json()
    contact = mai.post(f"{BASE}/partners/{partner['id']}/contacts", json={"name": "Hùng"}).json()
    response = mai.post(f"{BASE}/partners/{partner['id']}/contacts/{contact['id']}/invite")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "email"]
    an = api(co_crm, "an@example.com")  # sales may not give sign-ins
    assert (
        an.post(f"{BASE}/partners/{partner['id']}/contacts/{contact['id']}/invite").status_code
        == 403
    )


def test_customers_are_shared_with_partner_users_only(co_crm, api):
    setup = _setup(co_crm, api)
    mai = setup["mai"]
    staff = mai.post(
        f"{BASE}/shares",
        json={"customer_id": setup["shared"], "user_id": co_crm.people["chi@example.com"]},
    )
    assert staff.status_code == 422
    assert staff.json()["detail"][0]["loc"] == ["body", "user_id"]
    assert _share(setup, setup["shared"]).status_code == 201
    assert _share(setup, setup["shared"]).status_code == 409
    listed = mai.get(f"{BASE}/shares", params={"customer_id": setup["shared"]}).json()
    assert [s["email"] for s in listed] == ["doitac@saomai.vn"]
    an = api(co_crm, "an@example.com")
    assert an.get(f"{BASE}/shares", params={"customer_id": setup["shared"]}).status_code == 403


def test_a_partner_user_sees_exactly_the_shared_customer_through_every_route(co_crm, api, browser):
    setup = _setup(co_crm, api)
    assert _share(setup, setup["shared"]).status_code == 201
    partner = _partner_client(co_crm, setup)

    page = partner.get("/api/customers").json()
    assert [c["id"] for c in page["items"]] == [setup["shared"]]
    assert page["total"] == 1
    found = partner.get("/api/customers", params={"q": "nguyen"}).json()
    assert [c["id"] for c in found["items"]] == [setup["shared"]]
    assert partner.get("/api/customers", params={"q": "tran"}).json()["total"] == 0
    assert partner.get("/api/customers", params={"q": "khach"}).json()["total"] == 0  # the pool
    assert partner.get(f"/api/customers/{setup['shared']}").status_code == 200
    assert partner.get(f"/api/customers/{setup['other']}").status_code == 404
    assert partner.get(f"/api/customers/{setup['pool']}").status_code == 404
    assert partner.get(f"{BASE}/feed").status_code == 403  # no feed for partner contacts

    with co_crm.db.write() as session:  # an administrator lets partner contacts export
        session.execute(insert(RolePermission).values(role="partner", permission="customer:export"))
    web = browser(co_crm)
    assert web.login("doitac@saomai.vn", setup["invitation"]["password"]).status_code == 303
    exported = web.get("/ui/customer/export.csv")
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [int(r["id"]) for r in rows] == [setup["shared"]]
    listing = web.get("/ui/customer")
    assert "Nguyễn Thị Chia Sẻ" in listing.text
    assert "Trần Văn Riêng" not in listing.text and "Khách Chưa Giao" not in listing.text
    assert web.get(f"/ui/customer/{setup['shared']}").status_code == 200
    assert web.get(f"/ui/customer/{setup['other']}").status_code == 404
    assert web.get(f"/ui/customer/{setup['pool']}").status_code == 404

    gone = setup["mai"].delete(
        f"{BASE}/shares",
        params={"customer_id": setup["shared"], "user_id": setup["invitation"]["user_id"]},
    )
    assert gone.status_code == 204
    assert partner.get("/api/customers").json()["total"] == 0
    assert partner.get(f"/api/customers/{setup['shared']}").status_code == 404
    assert web.get(f"/ui/customer/{setup['shared']}").status_code == 404
    assert "Nguyễn Thị Chia Sẻ" not in web.get("/ui/customer").text
    again = setup["mai"].delete(
        f"{BASE}/shares",
        params={"customer_id": setup["shared"], "user_id": setup["invitation"]["user_id"]},
    )
    assert again.status_code == 404


def test_removing_the_contact_ends_their_sign_in_and_shares(co_crm, api):
    setup = _setup(co_crm, api)
    assert _share(setup, setup["shared"]).status_code == 201
    partner = _partner_client(co_crm, setup)
    assert partner.get("/api/customers").json()["total"] == 1
    url = f"{BASE}/partners/{setup['partner']['id']}/contacts/{setup['contact']['id']}"
    assert setup["mai"].delete(url).status_code == 204
    assert partner.get("/api/customers").status_code == 401
    with co_crm.db.session() as session:
        user = session.scalar(select(User).where(User.email == "doitac@saomai.vn"))
        assert not user.is_active


def test_the_shares_panel_shares_and_unshares_with_htmx(co_crm, api, browser):
    setup = _setup(co_crm, api)
    mai = browser(co_crm, "mai@example.com")
    panel = mai.get(f"/ui/slots/collaborative.shares/{setup['shared']}")
    assert panel.status_code == 200
    assert "doitac@saomai.vn" in panel.text  # offered in the form
    form = {"customer_id": setup["shared"], "user_id": setup["invitation"]["user_id"]}
    shared = mai.post("/collaborative/shares", form, headers=HX)
    assert shared.status_code == 200
    assert "Stop sharing" in shared.text
    assert _share(setup, setup["shared"]).status_code == 409
    stopped = mai.post("/collaborative/shares/delete", form, headers=HX)
    assert "Not shared with any partner contact." in stopped.text
    an = browser(co_crm, "an@example.com")  # sales: not a share manager
    assert an.get(f"/ui/slots/collaborative.shares/{setup['shared']}").status_code == 403
    assert an.post("/collaborative/shares", form, headers=HX).status_code == 403


def test_the_invite_button_shows_the_password_once_on_a_private_page(co_crm, api, browser):
    mai_api = api(co_crm, "mai@example.com")
    partner = mai_api.post(f"{BASE}/partners", json={"name": "Sao Mai", "kind": "reseller"}).json()
    contact = mai_api.post(
        f"{BASE}/partners/{partner['id']}/contacts",
        json={"name": "Phan Thị Hạnh", "email": "hanh@saomai.vn"},
    ).json()
    mai = browser(co_crm, "mai@example.com")
    page = mai.post(f"/collaborative/partners/{partner['id']}/contacts/{contact['id']}/invite")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "hanh@saomai.vn" in page.text and 'id="invited-password"' in page.text
    assert (
        mai.post(
            f"/collaborative/partners/{partner['id']}/contacts/{contact['id']}/invite"
        ).status_code
        == 409
    )


def test_commands_invite_share_and_unshare(co_crm, api, cli):
    env = {"CRM_LOAD_PLUGINS": "collaborative"}
    with co_crm.db.write() as session:
        customer = add_customer(session, "Hồ Thị Lệ", owner=co_crm.people["an@example.com"])
    mai = api(co_crm, "mai@example.com")
    partner = mai.post(f"{BASE}/partners", json={"name": "Sao Mai", "kind": "reseller"}).json()
    contact = mai.post(
        f"{BASE}/partners/{partner['id']}/contacts",
        json={"name": "Phan Thị Hạnh", "email": "hanh@saomai.vn"},
    ).json()
    invited = cli("collaborative", "partner-invite", str(contact["id"]), **env)
    assert invited.exit_code == 0, invited.output
    password = invited.output.rsplit(": ", 1)[1].strip()
    assert cli("collaborative", "share", str(customer), "hanh@saomai.vn", **env).exit_code == 0
    refused = cli("collaborative", "share", str(customer), "an@example.com", **env)
    assert refused.exit_code != 0 and "partner contacts only" in refused.output
    partner_user = _sign_in(co_crm, "hanh@saomai.vn", password)
    assert [c["id"] for c in partner_user.get("/api/customers").json()["items"]] == [customer]
    assert cli("collaborative", "unshare", str(customer), "hanh@saomai.vn", **env).exit_code == 0
    assert partner_user.get("/api/customers").json()["total"] == 0


def test_deleting_a_partner_ends_its_contacts_sign_ins_and_shares(co_crm, api):
    setup = _setup(co_crm, api)
    assert _share(setup, setup["shared"]).status_code == 201
    partner = _partner_client(co_crm, setup)
    assert partner.get("/api/customers").json()["total"] == 1
    an = api(co_crm, "an@example.com")
    link = an.post(
        f"{BASE}/partners/{setup['partner']['id']}/links",
        json={"record_type": "customer", "record_id": setup["shared"], "relation": "served_by"},
    )
    assert link.status_code == 201
    assert setup["mai"].delete(f"{BASE}/partners/{setup['partner']['id']}").status_code == 204
    assert partner.get("/api/customers").status_code == 401
    assert setup["mai"].get(f"{BASE}/shares", params={"customer_id": setup["shared"]}).json() == []
    of_customer = an.get(
        f"{BASE}/links", params={"record_type": "customer", "record_id": setup["shared"]}
    )
    assert of_customer.json() == []
