"""Loyalty points: earned on every order (``order_placed``), shown in the API, the panel and the
command line. The ``operational`` module comes enabled with ``loyalty``, its dependency."""

import json
import re

import pytest

from crm_loyalty import NAME

POINTS = f"/api/{NAME}/customers/{{id}}/points"


def new_customer(api, name="Trần Thị Mai"):
    """Create a customer through the API; return its id."""
    response = api.post("/api/customers", json={"display_name": name})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def place_order(api, customer_id, total_minor, currency="VND"):
    """Place an order through the operational module's API; return it as JSON."""
    body = {"customer_id": customer_id, "currency": currency, "total_minor": total_minor}
    response = api.post("/api/operational/orders", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_an_order_earns_one_point_per_10000_vnd(crm_api):
    customer = new_customer(crm_api)
    order = place_order(crm_api, customer, 1_259_000)
    place_order(crm_api, customer, 9_999)  # less than a point
    earned = crm_api.get(POINTS.format(id=customer)).json()
    assert earned["balance"] == 125
    assert [(e["order_ref"], e["points"]) for e in earned["latest"]] == [(order["ref"], 125)]


def test_orders_in_another_currency_earn_nothing(crm_api):
    customer = new_customer(crm_api)
    place_order(crm_api, customer, 50_000, currency="USD")
    assert crm_api.get(POINTS.format(id=customer)).json()["balance"] == 0


@pytest.mark.parametrize("crm_settings", [{"CRM_LOYALTY_MINOR_PER_POINT": "1000"}])
def test_the_rate_is_a_setting(crm_api, crm_settings):
    customer = new_customer(crm_api)
    place_order(crm_api, customer, 25_000)
    assert crm_api.get(POINTS.format(id=customer)).json()["balance"] == 25


def test_the_same_order_counts_once(crm_instance, crm_api):
    from crm_loyalty import events

    customer = new_customer(crm_api)
    order = place_order(crm_api, customer, 100_000)
    payload = {**order, "customer_id": customer, "currency": "VND", "total_minor": 100_000}
    events.on_order_placed(crm_instance, payload)  # delivered a second time
    assert crm_api.get(POINTS.format(id=customer)).json()["balance"] == 10


def test_points_need_the_permission_and_a_visible_customer(crm_api, crm_api_for, crm_user_factory):
    customer = new_customer(crm_api)
    marketing = crm_api_for(crm_user_factory(roles=("marketing",)))
    assert marketing.get(POINTS.format(id=customer)).status_code == 403
    seller = crm_api_for(crm_user_factory(roles=("sales",)))
    assert seller.get(POINTS.format(id=customer)).status_code == 404  # not the seller's customer


def test_the_panel_shows_the_balance(crm_api, crm_admin, crm_web_for):
    customer = new_customer(crm_api)
    place_order(crm_api, customer, 2_000_000)
    web = crm_web_for(crm_admin)
    page = web.get(f"/ui/customer/{customer}")
    slot = re.search(rf'hx-get="(/ui/slots/{NAME}\.points/{customer})"', page.text)
    assert slot, "the points panel is not on the customer page"
    panel = web.get(slot.group(1))
    assert panel.status_code == 200
    assert "200" in panel.text and "points" in panel.text


def test_the_balance_command(crm_api, crm_cli):
    customer = new_customer(crm_api)
    place_order(crm_api, customer, 300_000)
    result = crm_cli(NAME, "balance", str(customer), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"customer_id": customer, "balance": 30}


@pytest.mark.parametrize("crm_settings", [{"CRM_LOYALTY_CURRENCY": "dong"}])
def test_a_bad_setting_fails_the_checklist_naming_it(crm_cli, crm_settings):
    result = crm_cli("check", "--module", NAME, "--format", "json")
    assert result.exit_code == 1  # an open error fails `crm check`
    items = {item["id"]: item for item in json.loads(result.stdout)}
    assert items[f"{NAME}.E002"]["status"] == "open"
    assert "'dong' is not a three-letter currency code" in items[f"{NAME}.E002"]["detail"]
