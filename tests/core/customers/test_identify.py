"""Identify: lookup, duplicate candidates with reasons, and merge in one transaction."""

import pytest
from sqlalchemy import select, text

from core import modules
from core.customers import identify, service
from core.customers.models import Customer
from core.models import AuditLog


def make(crm, name, identities=(), **fields):
    with crm.db.write() as session:
        customer = service.create(session, crm, {"display_name": name, **fields}, identities)
        return customer.id


def test_duplicates_with_reasons(crm):
    company = make(crm, "Công ty TNHH An Phát", kind="company")
    a = make(
        crm,
        "Nguyễn Văn Đức",
        [("phone", "0912345678"), ("email", "duc@gmail.com")],
        company_id=company,
        country="VN",
    )
    same_name_company = make(crm, "NGUYEN VAN DUC", company_id=company)
    zalo_is_phone = make(crm, "Anh Đức", [("zalo", "+84 912 345 678")])
    typo_same_mail_user = make(crm, "Nguyễn Văn Đứa", [("email", "duc@yahoo.com")])
    unrelated = make(crm, "Trần Thị Lan", [("email", "lan@gmail.com")])
    with crm.db.session() as session:
        found = identify.duplicates(session, session.get(Customer, a))
    reasons = {c.customer.id: c.reasons for c in found}
    assert reasons[same_name_company] == ["same name and same company"]
    assert "same identity" in reasons[zalo_is_phone][0] and "zalo" in reasons[zalo_is_phone][0]
    assert reasons[typo_same_mail_user] == ["near-identical name and same e-mail user name"]
    assert unrelated not in reasons and company not in reasons
    assert found[0].customer.id == zalo_is_phone  # strongest evidence first


def test_merge_moves_everything_and_keeps_conflicts(crm, make_crm):
    from fastapi.testclient import TestClient

    from core.web.app import create_app
    from tests.core.customers.conftest import Api, make_token

    other_crm = make_crm(load_plugins="loyal")
    modules.enable(other_crm, ["loyal"])
    survivor = make(
        crm, "Nguyễn Văn Đức", [("phone", "0912345678")], country="VN", address="12 Lê Lợi"
    )
    merged = make(
        crm,
        "Nguyen Van Duc",
        [("email", "duc@gmail.com"), ("zalo", "123456789")],
        country="VN",
        address="34 Hai Bà Trưng",
        language="vi",
        external_ref="OLD-7",
    )
    child = make(crm, "Con", company_id=None)
    with other_crm.db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO loyal_balance VALUES (:s, 10), (:m, 5)"), {"s": survivor, "m": merged}
        )
        conn.execute(
            text("INSERT INTO loyal_visit (customer_id, place) VALUES (:m, 'shop'), (:m, 'web')"),
            {"m": merged},
        )
    manager = Api(
        TestClient(create_app(other_crm)),
        make_token(other_crm, "manager@example.com", ("manager",)),
    )
    manager.post(f"/api/customers/{merged}/identities", json={"channel": "web", "value": "duc"})
    response = manager.post(
        f"/api/customers/{survivor}/merge",
        json={"other_id": merged, "choose": {"address": "other"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["merged_id"] == merged
    assert body["conflicts"]["display_name"] == {
        "survivor": "Nguyễn Văn Đức",
        "merged": "Nguyen Van Duc",
        "kept": "survivor",
    }
    assert body["conflicts"]["address"]["kept"] == "other"
    result = body["survivor"]
    assert result["address"] == "34 Hai Bà Trưng"
    assert result["language"] == "vi" and result["external_ref"] == "OLD-7"  # gaps filled
    assert {i["channel"] for i in result["identities"]} == {"phone", "email", "zalo", "web"}
    assert body["moved"]["loyal_visit.customer_id"] == 2
    with crm.db.engine.connect() as conn:
        assert conn.execute(text("SELECT points FROM loyal_balance")).scalars().all() == [15]
        assert (
            conn.execute(
                text("SELECT count(*) FROM loyal_visit WHERE customer_id = :s"), {"s": survivor}
            ).scalar()
            == 2
        )
        assert (
            conn.execute(
                text("SELECT count(*) FROM core_customer WHERE id = :m"), {"m": merged}
            ).scalar()
            == 0
        )
    assert manager.get(f"/api/customers/{merged}").status_code == 404
    with crm.db.session() as session:
        row = session.scalars(select(AuditLog).where(AuditLog.action == "merge")).one()
    assert row.before["merged"]["address"] == "34 Hai Bà Trưng"
    assert row.before["survivor"]["address"] == "12 Lê Lợi"
    assert row.after["conflicts"]["address"]["merged"] == "34 Hai Bà Trưng"
    assert child


def test_a_failing_plugin_aborts_the_whole_merge(crm, make_crm):
    other_crm = make_crm(load_plugins="loyal")
    modules.enable(other_crm, ["loyal"])
    crm.refresh()
    survivor = make(crm, "A", [("phone", "0912345678")])
    merged = make(crm, "B", [("email", "b@example.com")])
    with other_crm.db.engine.begin() as conn:
        conn.execute(text("INSERT INTO loyal_balance VALUES (:m, -1)"), {"m": merged})
        conn.execute(
            text("INSERT INTO loyal_visit (customer_id, place) VALUES (:m, 'x')"), {"m": merged}
        )
    from core.plugins import PluginHookError

    with (
        pytest.raises(PluginHookError, match="module loyal: customer_merged failed"),
        other_crm.db.write() as session,
    ):
        identify.merge(
            session, other_crm, session.get(Customer, survivor), session.get(Customer, merged)
        )
    with crm.db.engine.connect() as conn:
        assert conn.execute(text("SELECT customer_id FROM loyal_visit")).scalar() == merged
        assert (
            conn.execute(
                text("SELECT count(*) FROM core_customer_identity WHERE customer_id = :m"),
                {"m": merged},
            ).scalar()
            == 1
        )


def test_merge_refuses_stale_versions_and_itself(crm, as_role):
    manager = as_role("manager")
    a = make(crm, "A")
    b = make(crm, "B")
    assert manager.post(f"/api/customers/{a}/merge", json={"other_id": a}).status_code == 422
    stale = manager.post(f"/api/customers/{a}/merge", json={"other_id": b, "other_version": 9})
    assert stale.status_code == 409
    assert (
        as_role("sales").post(f"/api/customers/{a}/merge", json={"other_id": b}).status_code == 403
    )
    assert (
        manager.post(
            f"/api/customers/{a}/merge", json={"other_id": b, "choose": {"password": "other"}}
        ).status_code
        == 422
    )
