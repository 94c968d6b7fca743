"""The partner network: partners with validated contact details, optimistic updates, links to
customers and opportunities under the record rules, the generated screens and the commands."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from plugins.collaborative import partners_cli
from plugins.collaborative.models import PARTNER_KINDS, Partner, PartnerLink
from tests.plugins.collaborative.helpers import add_customer

BASE = "/api/collaborative"
HX = {"HX-Request": "true"}


def _partner(client, **values):
    body = {"name": "Công ty Phân phối Hòa Bình", "kind": "distributor", **values}
    response = client.post(f"{BASE}/partners", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _count(crm, model) -> int:
    with crm.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def _customer(crm, name: str, owner: str | None) -> int:
    with crm.db.write() as session:
        return add_customer(session, name, owner=crm.people[owner] if owner else None)


def test_a_partner_is_created_with_normalised_contact_details(co_crm, api):
    mai = api(co_crm, "mai@example.com")
    created = _partner(
        mai,
        email="  Sales@HoaBinh.VN ",
        phone="0912 345 678",
        website="https://hoabinh.vn",
        notes="Nhà phân phối miền Bắc",
    )
    assert created["email"] == "sales@hoabinh.vn"
    assert created["phone"] == "+84912345678"
    assert created["version"] == 1
    fetched = mai.get(f"{BASE}/partners/{created['id']}").json()
    assert fetched["name"] == "Công ty Phân phối Hòa Bình"
    assert fetched["notes"] == "Nhà phân phối miền Bắc"


def test_bad_input_names_the_field_and_creates_nothing(co_crm, api):
    mai = api(co_crm, "mai@example.com")
    cases = {
        "kind": {"kind": "franchise"},
        "email": {"email": "not-an-address"},
        "phone": {"phone": "12"},
        "website": {"website": "javascript:alert(1)"},
        "name": {"name": "   "},
    }
    for field, values in cases.items():
        body = {"name": "Đối tác", "kind": "supplier", **values}
        response = mai.post(f"{BASE}/partners", json=body)
        assert response.status_code == 422, (field, response.text)
        assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]
    assert _count(co_crm, Partner) == 0


def test_list_searches_filters_by_kind_and_counts(co_crm, api):
    mai = api(co_crm, "mai@example.com")
    _partner(mai, name="Hòa Bình Logistics", kind="service_provider")
    _partner(mai, name="Sài Gòn Phân phối", kind="distributor")
    _partner(mai, name="شرکت پخش تهران", kind="distributor")
    an = api(co_crm, "an@example.com")
    everything = an.get(f"{BASE}/partners").json()
    assert everything["total"] == 3
    found = an.get(f"{BASE}/partners", params={"q": "logistics"}).json()
    assert [p["name"] for p in found["items"]] == ["Hòa Bình Logistics"]
    assert found["total"] == 1
    persian = an.get(f"{BASE}/partners", params={"q": "تهران"}).json()
    assert [p["name"] for p in persian["items"]] == ["شرکت پخش تهران"]
    distributors = an.get(f"{BASE}/partners", params={"kind": "distributor"}).json()
    assert distributors["total"] == 2
    assert {p["kind"] for p in distributors["items"]} == {"distributor"}
    wildcard = an.get(f"{BASE}/partners", params={"q": "%"}).json()
    assert wildcard["total"] == 0


def test_a_stale_update_is_refused_with_the_current_partner(co_crm, api):
    mai = api(co_crm, "mai@example.com")
    created = _partner(mai)
    url = f"{BASE}/partners/{created['id']}"
    first = mai.patch(url, json={"version": 1, "phone": "0987654321"})
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 2
    stale = mai.patch(url, json={"version": 1, "name": "Tên khác"})
    assert stale.status_code == 409
    assert stale.json()["current"]["version"] == 2
    assert stale.json()["current"]["phone"] == "+84987654321"
    bad = mai.patch(url, json={"version": 2, "email": "nope"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "email"]
    assert mai.get(url).json()["name"] == "Công ty Phân phối Hòa Bình"


def test_permissions_guard_every_change(co_crm, api):
    mai = api(co_crm, "mai@example.com")
    created = _partner(mai)
    dung = api(co_crm, "dung@example.com")  # service: may read partners, not change them
    assert dung.get(f"{BASE}/partners/{created['id']}").status_code == 200
    assert dung.post(f"{BASE}/partners", json={"name": "X", "kind": "supplier"}).status_code == 403
    patch = dung.patch(f"{BASE}/partners/{created['id']}", json={"version": 1, "name": "Y"})
    assert patch.status_code == 403
    assert api(co_crm, "an@example.com").get(f"{BASE}/partners/export.csv").status_code == 403
    assert mai.get(f"{BASE}/partners/999999").status_code == 404


def test_export_is_csv_of_the_matching_partners_with_formulas_neutralised(co_crm, api):
    mai = api(co_crm, "mai@example.com")  # managers hold collaborative.partner:export
    _partner(mai, name="=HYPERLINK(1)", kind="supplier")
    _partner(mai, name="Hòa Bình", kind="reseller")
    response = mai.get(f"{BASE}/partners/export.csv", params={"kind": "supplier"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["id", "name", "kind", "email", "phone", "website", "active"]
    assert [r[1] for r in rows[1:]] == ["'=HYPERLINK(1)"]


def test_contacts_are_added_validated_and_removed(co_crm, api):
    mai = api(co_crm, "mai@example.com")
    partner = _partner(mai)
    url = f"{BASE}/partners/{partner['id']}/contacts"
    bad = mai.post(url, json={"name": "Trần Văn Hùng", "email": "hung@"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "email"]
    made = mai.post(url, json={"name": "Trần Văn Hùng", "phone": "0912345678"}).json()
    assert made["phone"] == "+84912345678"
    changed = mai.patch(f"{url}/{made['id']}", json={"position": "Giám đốc"})
    assert changed.json()["position"] == "Giám đốc"
    assert [c["name"] for c in mai.get(url).json()] == ["Trần Văn Hùng"]
    assert mai.delete(f"{url}/{made['id']}").status_code == 204
    assert mai.get(url).json() == []
    other = _partner(mai, name="Khác")
    wrong = mai.patch(f"{BASE}/partners/{other['id']}/contacts/{made['id']}", json={"name": "X"})
    assert wrong.status_code == 404


def test_links_to_a_visible_customer_fill_its_customer_and_refuse_duplicates(co_crm, api):
    mine = _customer(co_crm, "Nguyễn Thị Lan", "an@example.com")
    south = _customer(co_crm, "Võ Văn Kiệt", "chi@example.com")
    mai = api(co_crm, "mai@example.com")
    partner = _partner(mai)
    an = api(co_crm, "an@example.com")
    url = f"{BASE}/partners/{partner['id']}/links"
    body = {"record_type": "customer", "record_id": mine, "relation": "referred_by"}
    made = an.post(url, json=body)
    assert made.status_code == 201, made.text
    assert made.json()["customer_id"] == mine
    assert made.json()["record_title"] == "Nguyễn Thị Lan"
    assert an.post(url, json=body).status_code == 409
    served = an.post(url, json={**body, "relation": "served_by"})
    assert served.status_code == 201
    bad = an.post(url, json={**body, "relation": "owns"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "relation"]
    hidden = an.post(url, json={**body, "record_id": south})
    assert hidden.status_code == 404
    missing = an.post(url, json={**body, "record_id": 999999})
    assert missing.status_code == 404
    of_record = an.get(f"{BASE}/links", params={"record_type": "customer", "record_id": mine})
    assert sorted(link["relation"] for link in of_record.json()) == ["referred_by", "served_by"]
    assert of_record.json()[0]["partner_name"] == partner["name"]
    chi = api(co_crm, "chi@example.com")
    assert (
        chi.get(f"{BASE}/links", params={"record_type": "customer", "record_id": mine}).status_code
        == 404
    )
    assert chi.get(url).json() == []  # the partner's links on customers chi may not see
    assert len(an.get(url).json()) == 2
    link_id = made.json()["id"]
    assert chi.delete(f"{url}/{link_id}").status_code == 404  # on a customer chi may not see
    assert an.delete(f"{url}/{link_id}").status_code == 204
    assert _count(co_crm, PartnerLink) == 1


def test_a_partner_links_to_an_opportunity_when_operational_is_enabled(all_crm, api):
    customer = _customer(all_crm, "Phạm Thị Hoa", "an@example.com")
    an = api(all_crm, "an@example.com")
    deal = an.post(
        "/api/operational/opportunities",
        json={"customer_id": customer, "title": "Hợp đồng phân phối 2025"},
    )
    assert deal.status_code == 201, deal.text
    partner = _partner(api(all_crm, "mai@example.com"), kind="reseller")
    url = f"{BASE}/partners/{partner['id']}/links"
    body = {
        "record_type": "operational.opportunity",
        "record_id": deal.json()["id"],
        "relation": "sold_by",
    }
    made = an.post(url, json=body)
    assert made.status_code == 201, made.text
    assert made.json()["customer_id"] == customer
    assert made.json()["record_title"] == "Hợp đồng phân phối 2025"
    assert an.post(url, json=body).status_code == 409
    chi = api(all_crm, "chi@example.com")
    assert chi.post(url, json={**body, "relation": "involved"}).status_code == 404


def test_an_opportunity_link_is_refused_without_the_operational_module(co_crm, api):
    customer = _customer(co_crm, "Phạm Thị Hoa", "an@example.com")
    an = api(co_crm, "an@example.com")
    partner = _partner(api(co_crm, "mai@example.com"))
    body = {"record_type": "operational.opportunity", "record_id": customer, "relation": "sold_by"}
    response = an.post(f"{BASE}/partners/{partner['id']}/links", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "record_type"]


def test_the_generated_screens_list_create_and_show_partners(co_crm, browser):
    mai = browser(co_crm, "mai@example.com")
    bad = mai.post(
        "/ui/partner/new", {"name": "Hòa Bình", "kind": "reseller", "email": "hoa@", "phone": ""}
    )
    assert bad.status_code == 422
    assert _count(co_crm, Partner) == 0
    made = mai.post(
        "/ui/partner/new",
        {"name": "Hòa Bình", "kind": "reseller", "email": "Hoa@Binh.vn", "phone": "0912345678"},
    )
    assert made.status_code == 303, made.text
    detail = mai.get(made.headers["location"])
    assert detail.status_code == 200
    assert "hoa@binh.vn" in detail.text
    assert 'id="tab-contacts"' in detail.text and 'id="tab-links"' in detail.text
    listing = mai.get("/ui/partner?kind=reseller")
    assert "Hòa Bình" in listing.text
    assert "Hòa Bình" not in mai.get("/ui/partner?kind=supplier").text
    assert 'href="/ui/partner"' in mai.get("/").text  # the menu entry


def test_the_customer_panel_links_a_partner_with_htmx(co_crm, api, browser):
    customer = _customer(co_crm, "Lý Thị Mai", "an@example.com")
    south = _customer(co_crm, "Đỗ Văn Nam", "chi@example.com")
    partner = _partner(api(co_crm, "mai@example.com"), name="Đại lý <b>Sao Mai</b>")
    an = browser(co_crm, "an@example.com")
    slot = an.get(f"/ui/slots/collaborative.partners/{customer}")
    assert slot.status_code == 200
    assert "Link partner" in slot.text
    form = {"record_type": "customer", "record_id": customer, "partner_id": partner["id"]}
    added = an.post(
        "/collaborative/partners/links", {**form, "relation": "referred_by"}, headers=HX
    )
    assert added.status_code == 200, added.text
    assert "Đại lý &lt;b&gt;Sao Mai&lt;/b&gt;" in added.text
    again = an.post(
        "/collaborative/partners/links", {**form, "relation": "referred_by"}, headers=HX
    )
    assert "already linked" in again.text
    assert _count(co_crm, PartnerLink) == 1
    hidden = an.post(
        "/collaborative/partners/links", {**form, "record_id": south, "relation": "served_by"}
    )
    assert hidden.status_code == 404
    assert an.get(f"/ui/slots/collaborative.partners/{south}").status_code == 404


def test_the_partner_page_adds_contacts(co_crm, api, browser):
    partner = _partner(api(co_crm, "mai@example.com"))
    mai = browser(co_crm, "mai@example.com")
    url = f"/collaborative/partners/{partner['id']}/contacts"
    bad = mai.post(url, {"name": "Hùng", "phone": "12"}, headers=HX)
    assert "phone" in bad.text
    good = mai.post(url, {"name": "Hùng", "email": "hung@hoabinh.vn"}, headers=HX)
    assert "hung@hoabinh.vn" in good.text
    assert "Invite" in good.text  # a manager may give the contact a sign-in


def test_commands_add_and_list_partners(co_crm, cli):
    env = {"CRM_LOAD_PLUGINS": "collaborative"}
    added = cli(
        "collaborative",
        "partner-add",
        "Nhà cung cấp Minh Long",
        "--kind",
        "supplier",
        "--phone",
        "0912345678",
        **env,
    )
    assert added.exit_code == 0, added.output
    refused = cli("collaborative", "partner-add", "X", "--kind", "supplier", "--email", "x@", **env)
    assert refused.exit_code != 0
    assert "email" in refused.output
    listed = cli("collaborative", "partners", "--format", "json", **env)
    assert listed.exit_code == 0, listed.output
    assert '"name": "Nhà cung cấp Minh Long"' in listed.output
    assert '"phone": "+84912345678"' in listed.output
    assert (
        cli("collaborative", "partners", "--kind", "reseller", **env).output.strip()
        == "No partners."
    )


def test_the_command_line_knows_every_kind():
    assert partners_cli.KINDS == PARTNER_KINDS
