"""``/api/smart_sales/rules`` and ``/api/smart_sales/runs``: reading, filtering and sorting the
current rules, mining through the API (and its refusals), muting, permissions."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import select

from plugins.smart_sales import runs
from plugins.smart_sales.models import MiningRun, MutedRule, Rule
from tests.plugins.collaborative.helpers import ADMIN, add_customer
from tests.plugins.smart_sales.test_runs import (
    SMALL,
    add_orders,
    add_products,
    count,
    load_sku_baskets,
    one_customer_per_basket,
)

MANAGER, SELLER, MARKETER = "mai@example.com", "an@example.com", "zahra@example.com"


@pytest.fixture
def mined(ss_crm) -> dict:
    """``SMALL`` as orders and a run over it (8 rules: a, b, c, d); ids by SKU."""
    products = load_sku_baskets(ss_crm, SMALL)
    runs.run_mining(ss_crm, min_support=0.4, min_lift=0, raise_alerts=False)
    return products


def url_key(key: str) -> str:
    return quote(key, safe="")


def test_current_rules(ss_crm, api, mined):
    body = api(ss_crm, SELLER).get("/api/smart_sales/rules").json()
    assert body["run"]["id"] == 1 and body["run"]["params"]["min_support"] == 0.4
    assert body["run"]["capped"] == 0 and body["run"]["status"] == "ok"
    assert body["total"] == 8 and len(body["rules"]) == 8
    confidences = [r["confidence"] for r in body["rules"]]
    assert confidences == sorted(confidences, reverse=True)
    first = body["rules"][0]
    assert (first["antecedent"], first["consequent"], first["conviction"]) == (["d"], ["b"], None)
    assert first["antecedent_ids"] == [mined["d"]] and first["muted"] is False
    assert first["key"] == f"{mined['d']}>{mined['b']}" and first["count"] == 2


def test_no_run_yet(ss_crm, api):
    assert api(ss_crm, SELLER).get("/api/smart_sales/rules").json() == {
        "run": None,
        "total": 0,
        "rules": [],
    }


def test_a_new_run_replaces_the_current_rules_and_a_failed_one_does_not(ss_crm, api, mined):
    runs.run_mining(ss_crm, min_support=0.6, min_lift=0, raise_alerts=False)
    with pytest.raises(Exception, match="min_support"):
        runs.run_mining(ss_crm, min_support=0.01, raise_alerts=False)
    body = api(ss_crm, SELLER).get("/api/smart_sales/rules").json()
    assert body["run"]["id"] == 2 and body["total"] == 2  # a <-> b only


def test_filters_sort_and_pages(ss_crm, api, mined):
    client = api(ss_crm, SELLER)

    def sides(**params) -> list[tuple[list[str], list[str]]]:
        response = client.get("/api/smart_sales/rules", params=params)
        assert response.status_code == 200, response.text
        return [(r["antecedent"], r["consequent"]) for r in response.json()["rules"]]

    assert sorted(sides(sku="d")) == [(["b"], ["d"]), (["d"], ["b"])]
    assert len(sides(sku="a")) == 4 and sides(sku="không-có") == []
    assert sides(min_lift=1.1) == [(["d"], ["b"]), (["b"], ["d"])]
    lifts = [
        r["lift"]
        for r in client.get("/api/smart_sales/rules", params={"sort": "lift"}).json()["rules"]
    ]
    assert lifts == sorted(lifts, reverse=True) and lifts[0] == pytest.approx(1.25)
    supports = client.get("/api/smart_sales/rules", params={"sort": "support"}).json()["rules"]
    assert supports[0]["support"] == pytest.approx(0.6)
    page = client.get("/api/smart_sales/rules", params={"limit": 3, "offset": 6}).json()
    assert page["total"] == 8 and len(page["rules"]) == 2
    for params in ({"sort": "random"}, {"limit": 0}, {"limit": 5000}, {"min_lift": -1}):
        assert client.get("/api/smart_sales/rules", params=params).status_code == 422, params


def test_sku_filter_matches_whole_ids_only(ss_crm, api):
    # ids 1, 2, 11 and 12 bought together: "1,11>12" names neither 2 nor 1 twice
    with ss_crm.db.write() as session:
        products = add_products(session, [f"sp{i:02d}" for i in range(1, 13)])
        ids = [products[f"sp{i:02d}"] for i in (1, 11, 12)]
        customer = add_customer(session, "Đỗ Quyên")
        add_orders(session, customer, [ids] * 3 + [[products["sp02"], products["sp03"]]] * 2)
    runs.run_mining(ss_crm, min_support=0.4, min_lift=0, raise_alerts=False)
    client = api(ss_crm, SELLER)
    for sku in ("sp01", "sp02", "sp11", "sp12", "sp03", "sp05"):
        rules = client.get("/api/smart_sales/rules", params={"sku": sku, "limit": 1000}).json()
        expected = {
            r.key
            for r in _all_rules(ss_crm)
            if products[sku] in (*r.antecedent_ids, *r.consequent_ids)
        }
        assert {r["key"] for r in rules["rules"]} == expected, sku
        assert all(sku in r["antecedent"] + r["consequent"] for r in rules["rules"])
        assert len(expected) == {"sp02": 2, "sp03": 2, "sp05": 0}.get(sku, 10), sku


def _all_rules(crm) -> list[Rule]:
    with crm.db.session() as session:
        return list(session.scalars(select(Rule)))


def test_runs_and_one_run(ss_crm, api, mined):
    with pytest.raises(Exception, match="min_support"):
        runs.run_mining(ss_crm, min_support=0.01, raise_alerts=False)
    client = api(ss_crm, SELLER)
    listed = client.get("/api/smart_sales/runs").json()
    assert [(r["id"], r["status"]) for r in listed] == [(2, "failed"), (1, "ok")]
    assert "fewer than 2 baskets" in listed[0]["error"]
    failed = client.get("/api/smart_sales/runs", params={"status": "failed"}).json()
    assert [r["id"] for r in failed] == [2]
    one = client.get("/api/smart_sales/runs/1").json()
    assert one["rules"] == 8 == one["rules_total"] == len(one["rule_list"])
    assert one["rule_list"][0]["antecedent"] == ["d"] and one["itemsets"] == 8
    paged = client.get("/api/smart_sales/runs/1", params={"limit": 2, "offset": 1}).json()
    assert [r["id"] for r in paged["rule_list"]] == [r["id"] for r in one["rule_list"][1:3]]
    assert client.get("/api/smart_sales/runs/2").json()["rule_list"] == []
    assert client.get("/api/smart_sales/runs/99").status_code == 404


def test_mine_through_the_api(ss_crm, api):
    load_sku_baskets(ss_crm, SMALL)
    client = api(ss_crm, MANAGER)
    response = client.post(
        "/api/smart_sales/runs",
        json={"min_support": 0.4, "min_lift": 0, "max_length": 2, "raise_alerts": False},
    )
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["status"] == "ok" and run["rules"] == 8 and run["baskets"] == 5
    assert run["started_by"] == ss_crm.people[MANAGER]
    assert run["params"] == {
        "min_support": 0.4,
        "min_confidence": 0.2,
        "min_lift": 0.0,
        "max_length": 2,
        "max_basket_size": 50,
        "since": None,
    }
    assert client.get("/api/smart_sales/rules").json()["run"]["id"] == run["id"]
    since = client.post(
        "/api/smart_sales/runs",
        json={"min_support": 0.4, "since": "2030-01-01", "raise_alerts": False},
    ).json()
    assert since["params"]["since"] == "2030-01-01" and since["baskets"] == 0


def test_refused_mining_is_422_with_the_message(ss_crm, api):
    load_sku_baskets(ss_crm, SMALL)
    response = api(ss_crm, MANAGER).post(
        "/api/smart_sales/runs", json={"min_support": 0.1, "raise_alerts": False}
    )
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "min_support"]
    assert "raise min_support to at least 0.4" in problem["msg"]
    with ss_crm.db.session() as session:
        run = session.scalars(select(MiningRun)).one()
    assert run.status == "failed" and run.started_by == ss_crm.people[MANAGER]
    assert count(ss_crm, Rule) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"min_support": 0}, "min_support"),
        ({"min_support": 2}, "min_support"),
        ({"min_confidence": -0.1}, "min_confidence"),
        ({"min_lift": -1}, "min_lift"),
        ({"max_length": 11}, "max_length"),
        ({"max_basket_size": 1}, "max_basket_size"),
        ({"since": "2025-02-30"}, "since"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_422_and_store_nothing(ss_crm, api, body, field):
    response = api(ss_crm, MANAGER).post("/api/smart_sales/runs", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert count(ss_crm, MiningRun) == 0


def test_mute_and_unmute(ss_crm, api, mined):
    client = api(ss_crm, MANAGER)
    key = f"{mined['d']}>{mined['b']}"
    response = client.post(
        f"/api/smart_sales/rules/{url_key(key)}/mute", json={"reason": "Khách sỉ mua lô"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["key"] == key and response.json()["reason"] == "Khách sỉ mua lô"
    assert response.json()["muted_by"] == ss_crm.people[MANAGER]
    assert client.post(f"/api/smart_sales/rules/{key}/mute", json={}).json()["reason"] == ""

    seller = api(ss_crm, SELLER)
    listed = seller.get("/api/smart_sales/rules", params={"muted": "true"}).json()
    assert [r["key"] for r in listed["rules"]] == [key] and listed["rules"][0]["muted"]
    unmuted = seller.get("/api/smart_sales/rules", params={"muted": "false"}).json()
    assert unmuted["total"] == 7 and key not in {r["key"] for r in unmuted["rules"]}
    assert seller.get("/api/smart_sales/runs/1").json()["rule_list"][0]["muted"] is True

    assert client.delete(f"/api/smart_sales/rules/{url_key(key)}/mute").status_code == 204
    assert client.delete(f"/api/smart_sales/rules/{url_key(key)}/mute").status_code == 404
    assert count(ss_crm, MutedRule) == 0
    unknown = client.post("/api/smart_sales/rules/999>998/mute", json={"reason": "x"})
    assert unknown.status_code == 404 and "no rule" in unknown.json()["detail"]
    assert client.post(f"/api/smart_sales/rules/{key}/mute", json={"why": "x"}).status_code == 422


def test_permissions(ss_crm, api, mined):
    key = f"{mined['d']}>{mined['b']}"
    seller = api(ss_crm, SELLER)  # reads rules, neither mines nor mutes
    assert seller.get("/api/smart_sales/rules").status_code == 200
    assert seller.get("/api/smart_sales/runs").status_code == 200
    assert seller.post("/api/smart_sales/runs", json={}).status_code == 403
    assert seller.post(f"/api/smart_sales/rules/{key}/mute", json={}).status_code == 403
    assert seller.delete(f"/api/smart_sales/rules/{key}/mute").status_code == 403
    marketer = api(ss_crm, MARKETER)  # no smart_sales.rule:read
    for url in ("/api/smart_sales/rules", "/api/smart_sales/runs", "/api/smart_sales/runs/1"):
        assert marketer.get(url).status_code == 403, url
    assert count(ss_crm, MiningRun) == 1 and count(ss_crm, MutedRule) == 0
    admin = api(ss_crm, ADMIN)
    response = admin.post("/api/smart_sales/runs", json={"min_support": 0.4, "raise_alerts": False})
    assert response.status_code == 201


def test_signed_out_and_cross_site_requests_are_refused(ss_crm, api, mined):
    from fastapi.testclient import TestClient

    from core.web.app import create_app

    anonymous = TestClient(create_app(ss_crm))
    assert anonymous.get("/api/smart_sales/rules").status_code == 401
    assert anonymous.post("/api/smart_sales/runs", json={}).status_code in (401, 403)
    manager = api(ss_crm, MANAGER)
    evil = manager.client.post(
        "/api/smart_sales/runs", json={}, headers={"Origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    assert count(ss_crm, MiningRun) == 1


def test_mining_through_the_api_raises_alerts(ss_crm, api):
    from plugins.smart_sales.models import Alert

    one_customer_per_basket(ss_crm, ss_crm.people[SELLER])
    response = api(ss_crm, MANAGER).post(
        "/api/smart_sales/runs", json={"min_support": 0.4, "min_lift": 0}
    )
    assert response.status_code == 201, response.text
    raised = response.json()["alerts_raised"]
    assert raised > 0 and count(ss_crm, Alert) == raised
    with ss_crm.db.session() as session:
        assert set(session.scalars(select(Alert.source))) == {"mining"}
