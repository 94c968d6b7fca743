"""The customers REST API: create, read, list, search, update with locking, archive, delete."""

import pytest
from sqlalchemy import select

from core.models import AuditLog

NEW = {
    "given_name": "Đức",
    "family_name": "Nguyễn Văn",
    "country": "VN",
    "identities": [
        {"channel": "phone", "value": "0912 345 678"},
        {"channel": "email", "value": "Duc.Nguyen@Example.COM"},
    ],
    "tags": ["VIP", "retail"],
}


def test_create_normalises_and_returns_the_customer(as_role):
    sales = as_role("sales")
    response = sales.post("/api/customers", json=NEW)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["display_name"] == "Nguyễn Văn Đức"  # Vietnamese order for VN
    assert {(i["channel"], i["value"]) for i in body["identities"]} == {
        ("phone", "+84912345678"),
        ("email", "duc.nguyen@example.com"),
    }
    assert body["tags"] == ["retail", "vip"]
    assert body["version"] == 1
    assert body["owner_id"] is not None  # the creator owns it


def test_validation_errors_name_each_field(as_role):
    sales = as_role("sales")
    bad = sales.post(
        "/api/customers", json={"display_name": "X", "country": "Vietnam", "kind": "robot"}
    )
    assert bad.status_code == 422
    fields = {tuple(e["loc"]) for e in bad.json()["detail"]}
    assert ("body", "country") in fields and ("body", "kind") in fields
    phone = sales.post(
        "/api/customers",
        json={"display_name": "X", "identities": [{"channel": "phone", "value": "12"}]},
    )
    assert phone.status_code == 422 and phone.json()["detail"][0]["loc"] == ["body", "phone"]
    nameless = sales.post("/api/customers", json={"country": "VN"})
    assert nameless.status_code == 422
    assert nameless.json()["detail"][0]["loc"] == ["body", "display_name"]


@pytest.mark.parametrize("field", ["id", "version", "is_admin", "role", "created_at", "search_key"])
def test_mass_assignment_is_rejected(as_role, field):
    response = as_role("sales").post("/api/customers", json={"display_name": "A", field: 1})
    assert response.status_code == 422


def test_owner_can_only_be_set_with_assign_permission(as_role):
    manager = as_role("manager")
    other = manager.get("/api/me").json()["id"]
    assert (
        as_role("sales")
        .post("/api/customers", json={"display_name": "A", "owner_id": other})
        .status_code
        == 403
    )
    assert (
        manager.post("/api/customers", json={"display_name": "A", "owner_id": other}).status_code
        == 201
    )


def test_identity_belongs_to_one_customer(as_role):
    sales = as_role("sales")
    first = sales.post("/api/customers", json=NEW).json()
    again = sales.post(
        "/api/customers",
        json={
            "display_name": "Someone",
            "identities": [{"channel": "phone", "value": "+84912345678"}],
        },
    )
    assert again.status_code == 409
    assert again.json()["customer_id"] == first["id"]


def test_read_update_with_version_and_stale_version(as_role, crm):
    sales = as_role("sales")
    created = sales.post("/api/customers", json=NEW).json()
    url = f"/api/customers/{created['id']}"
    assert sales.get(url).json()["display_name"] == "Nguyễn Văn Đức"
    first = sales.patch(url, json={"version": 1, "address": "12 Lê Lợi, Quận 1"})
    assert first.status_code == 200 and first.json()["version"] == 2
    stale = sales.patch(url, json={"version": 1, "address": "overwritten?"})
    assert stale.status_code == 409
    assert stale.json()["current"]["address"] == "12 Lê Lợi, Quận 1"
    assert stale.json()["current"]["version"] == 2
    assert sales.get(url).json()["address"] == "12 Lê Lợi, Quận 1"
    tags = sales.patch(url, json={"version": 2, "tags": ["loyal"]})
    assert tags.json()["tags"] == ["loyal"] and tags.json()["version"] == 3
    with crm.db.session() as session:
        rows = session.scalars(
            select(AuditLog).where(
                AuditLog.model == "customer", AuditLog.record_id == str(created["id"])
            )
        ).all()
    assert {r.action for r in rows} >= {"create", "update"}
    update = next(r for r in rows if r.action == "update" and r.after.get("address"))
    assert update.after["address"] == "12 Lê Lợi, Quận 1" and update.actor == "sales@example.com"


def test_list_search_filters_and_keyset_pages(as_role):
    sales = as_role("sales")
    names = ["Nguyễn Văn Đức", "Nguyễn Thị Hương", "Trần Đức Anh", "Đặng Văn Lâm", "علی رضایی"]
    for index, name in enumerate(names):
        sales.post(
            "/api/customers", json={"display_name": name, "tags": ["vip"] if index % 2 == 0 else []}
        )
    found = sales.get("/api/customers", params={"q": "nguyen van duc"}).json()
    assert [c["display_name"] for c in found["items"]] == ["Nguyễn Văn Đức"]
    assert sales.get("/api/customers", params={"q": "NGUYEN"}).json()["total"] == 2
    assert (
        sales.get("/api/customers", params={"q": "dang"}).json()["items"][0]["display_name"]
        == "Đặng Văn Lâm"
    )
    assert sales.get("/api/customers", params={"q": "علي"}).json()["total"] == 1  # ي vs ی
    assert sales.get("/api/customers", params={"tag": "vip"}).json()["total"] == 3
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "sort": "name", **({"cursor": cursor} if cursor else {})}
        page = sales.get("/api/customers", params=params).json()
        seen += [c["display_name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and len(set(seen)) == 5
    assert seen[0] == "Đặng Văn Lâm"  # "dang..." sorts first
    bad = sales.get("/api/customers", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert sales.get("/api/customers", params={"sort": "password"}).status_code == 422


def test_total_is_capped(as_role, crm, monkeypatch):
    from core.customers import listing

    monkeypatch.setattr(listing, "COUNT_CAP", 3)
    sales = as_role("sales")
    for index in range(5):
        sales.post("/api/customers", json={"display_name": f"Customer {index}"})
    page = sales.get("/api/customers").json()
    assert page["total"] == 3 and page["total_capped"] is True


def test_archive_restore_delete_and_permissions(as_role):
    sales, admin, analyst = as_role("sales"), as_role("admin"), as_role("analyst")
    cid = sales.post("/api/customers", json={"display_name": "Lê Văn Tám"}).json()["id"]
    assert analyst.get(f"/api/customers/{cid}").status_code == 200
    assert analyst.post("/api/customers", json={"display_name": "x"}).status_code == 403
    assert analyst.patch(f"/api/customers/{cid}", json={"version": 1}).status_code == 403
    assert sales.post(f"/api/customers/{cid}/archive").json()["archived"] is True
    assert sales.get("/api/customers").json()["total"] == 0
    assert sales.get("/api/customers", params={"archived": "any"}).json()["total"] == 1
    assert sales.post(f"/api/customers/{cid}/restore").json()["archived"] is False
    assert sales.delete(f"/api/customers/{cid}").status_code == 403
    assert admin.delete(f"/api/customers/{cid}").status_code == 204
    assert admin.get(f"/api/customers/{cid}").status_code == 404
    assert as_role("sales").client.get("/api/customers").status_code == 401


def test_identities_added_removed_and_looked_up(as_role):
    sales = as_role("sales")
    cid = sales.post("/api/customers", json={"display_name": "Võ Thị Sáu"}).json()["id"]
    added = sales.post(
        f"/api/customers/{cid}/identities", json={"channel": "zalo", "value": "0987 654 321"}
    )
    assert added.status_code == 201 and added.json()["value"] == "+84987654321"
    found = sales.get("/api/customers/lookup", params={"zalo": "+84 987 654 321"})
    assert found.status_code == 200 and found.json()["id"] == cid
    assert (
        sales.get("/api/customers/lookup", params={"email": "nobody@example.com"}).status_code
        == 404
    )
    assert sales.get("/api/customers/lookup", params={"phone": "abc"}).status_code == 422
    assert sales.get("/api/customers/lookup").status_code == 422
    assert sales.delete(f"/api/customers/{cid}/identities/{added.json()['id']}").status_code == 204
    assert sales.get("/api/customers/lookup", params={"zalo": "0987654321"}).status_code == 404
