"""``/smart_sales/rules``: the run summary, rules in plain terms, filters, mining from the page,
muting with and without htmx, permissions, the menu entry, the page in Vietnamese and Persian."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from core.models import User
from plugins.operational.models import Product
from plugins.smart_sales import runs
from plugins.smart_sales.models import MiningRun, MutedRule, Rule
from tests.plugins.smart_sales.test_runs import (
    SMALL,
    count,
    load_sku_baskets,
    one_customer_per_basket,
)

PAGE = "/smart_sales/rules"
MANAGER, SELLER, MARKETER = "mai@example.com", "an@example.com", "zahra@example.com"


@pytest.fixture
def mined(ss_crm) -> dict[str, int]:
    """``SMALL`` as orders (product names "Sản phẩm <sku>") and a run over it: 8 rules."""
    products = load_sku_baskets(ss_crm, SMALL)
    runs.run_mining(ss_crm, min_support=0.4, min_lift=0, raise_alerts=False,
                    started_by=ss_crm.people[MANAGER])  # fmt: skip
    return products


def rule_id(crm, key: str) -> int:
    with crm.db.session() as session:
        return session.scalar(select(Rule.id).where(Rule.key == key).order_by(Rule.id.desc()))


def rows(html: str) -> list[str]:
    """The ``data-rule`` keys of the rule rows, in page order."""
    keys = re.findall(r'<tr id="rule-\d+" data-rule="([^"]+)"', html)
    return [key.replace("&gt;", ">") for key in keys]


def test_signed_out_visitors_go_to_sign_in(ss_crm, browser):
    anonymous = browser(ss_crm)
    response = anonymous.get(PAGE, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_the_page_shows_the_run_and_its_rules(ss_crm, browser, mined):
    html = browser(ss_crm, SELLER).get(PAGE).text
    assert 'id="run-summary"' in html and "Run 1" in html
    assert re.search(r'id="run-baskets">5<', html) and re.search(r'id="run-capped">0<', html)
    assert re.search(r'id="run-rules">8<', html)
    assert "Hoàng Mai" in html  # who mined
    assert "minimum support 40.00%" in html and "all orders" in html
    assert len(rows(html)) == 8 and rows(html)[0] == f"{mined['d']}>{mined['b']}"
    assert 'Sản phẩm d <small class="muted">(d)</small>' in html
    assert "100.0%" in html and "1.3×" in html  # d -> b: confidence 1, lift 1.25
    # a seller reads, but neither mutes nor mines
    assert "/mute" not in html and 'id="mine"' not in html
    assert 'id="runs"' in html and 'data-run="1"' in html


def test_product_names_are_current_and_skus_as_mined(ss_crm, browser, mined):
    with ss_crm.db.write() as session:
        session.execute(
            update(Product).where(Product.id == mined["d"]).values(name="Bình giữ nhiệt", sku="d2")
        )
    html = browser(ss_crm, SELLER).get(PAGE).text
    assert 'Bình giữ nhiệt <small class="muted">(d)</small>' in html


def test_no_run_yet(ss_crm, browser):
    seller = browser(ss_crm, SELLER).get(PAGE)
    assert seller.status_code == 200 and "No mining run has succeeded yet." in seller.text
    assert 'id="mine"' not in seller.text
    manager = browser(ss_crm, MANAGER).get(PAGE).text
    assert 'id="mine"' in manager and 'name="min_support" value="1"' in manager
    assert 'name="min_confidence" value="20"' in manager
    assert 'name="min_lift" value="1.2"' in manager


def test_filters_sorts_and_other_runs(ss_crm, browser, mined):
    client = browser(ss_crm, SELLER)
    d = f"{mined['d']}>{mined['b']}"
    assert sorted(rows(client.get(PAGE, params={"sku": "d"}).text)) == sorted(
        [d, f"{mined['b']}>{mined['d']}"]
    )
    assert "No rule matches." in client.get(PAGE, params={"sku": "zz"}).text
    lifts = rows(client.get(PAGE, params={"sort": "lift"}).text)
    assert set(lifts[:2]) == {d, f"{mined['b']}>{mined['d']}"}
    assert len(rows(client.get(PAGE, params={"sort": "", "muted": "", "page": ""}).text)) == 8
    runs.run_mining(ss_crm, min_support=0.6, min_lift=0, raise_alerts=False)
    assert len(rows(client.get(PAGE).text)) == 2  # the new current run: a <-> b
    old = client.get(PAGE, params={"run": "1"}).text
    assert len(rows(old)) == 8 and "Run 1" in old
    assert client.get(PAGE, params={"run": "99"}).status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"run": "abc"}, "run"),
        ({"run": "-1"}, "run"),
        ({"run": "0"}, "run"),
        ({"run": "99999999999"}, "run"),
        ({"run": "١"}, "run"),  # an Arabic-Indic digit is not a run id
        ({"sort": "bogus"}, "sort"),
        ({"muted": "maybe"}, "muted"),
        ({"page": "x"}, "page"),
        ({"page": "0"}, "page"),
    ],
)
def test_bad_query_parameters_are_refused_naming_the_field(ss_crm, browser, mined, params, field):
    before = [count(ss_crm, model) for model in (MiningRun, Rule, MutedRule)]
    answer = browser(ss_crm, SELLER).get(PAGE, params=params)
    assert answer.status_code == 422
    assert f'class="error-box" role="alert">{field}: ' in answer.text
    assert rows(answer.text) == []
    assert [count(ss_crm, model) for model in (MiningRun, Rule, MutedRule)] == before


def test_paging(ss_crm, browser, monkeypatch, mined):
    from plugins.smart_sales import rules_pages

    monkeypatch.setattr(rules_pages, "PAGE_SIZE", 3)
    client = browser(ss_crm, SELLER)
    first = client.get(PAGE, params={"sku": "a"}).text
    assert len(rows(first)) == 3 and "Rules 1–3 of 4" in first
    assert 'href="/smart_sales/rules?sku=a&amp;page=2" rel="next"' in first
    second = client.get(PAGE, params={"sku": "a", "page": "2"}).text
    assert len(rows(second)) == 1 and 'rel="prev"' in second and "Page 2 of 2" in second


def test_a_failed_latest_run_is_shown(ss_crm, browser, mined):
    with pytest.raises(Exception, match="min_support"):
        runs.run_mining(ss_crm, min_support=0.1, raise_alerts=False)
    html = browser(ss_crm, SELLER).get(PAGE).text
    assert 'id="latest-failed"' in html and "run 2" in html and "fewer than 2 baskets" in html
    assert len(rows(html)) == 8  # the current rules are still run 1's
    failed = browser(ss_crm, SELLER).get(PAGE, params={"run": "2"}).text
    assert rows(failed) == [] and "fewer than 2 baskets" in failed


def test_mine_now(ss_crm, browser):
    load_sku_baskets(ss_crm, SMALL)
    manager = browser(ss_crm, MANAGER)
    response = manager.post(
        f"{PAGE}/mine",
        {"min_support": "40", "min_confidence": "", "min_lift": "0", "max_length": "2",
         "max_basket_size": "", "since": "", "raise_alerts": ""},
    )  # fmt: skip
    assert response.status_code == 303 and response.headers["location"] == PAGE
    html = manager.get(PAGE).text
    assert "Mined 8 rules from 5 baskets; 0 alerts raised." in html
    with ss_crm.db.session() as session:
        run = session.scalars(select(MiningRun)).one()
    assert run.params["min_support"] == 0.4 and run.params["min_confidence"] == 0.2
    assert run.params["max_length"] == 2 and run.started_by == ss_crm.people[MANAGER]


def test_mine_now_reads_numbers_the_vietnamese_way(ss_crm, browser):
    load_sku_baskets(ss_crm, SMALL)
    with ss_crm.db.write() as session:
        session.execute(update(User).where(User.email == MANAGER).values(language="vi"))
    manager = browser(ss_crm, MANAGER)
    form = manager.get(PAGE).text
    assert 'name="min_lift" value="1,2"' in form and 'name="max_basket_size" value="50"' in form
    response = manager.post(
        f"{PAGE}/mine", {"min_support": "40", "min_lift": "0,5", "since": "2020-01-01"}
    )
    assert response.status_code == 303
    with ss_crm.db.session() as session:
        run = session.scalars(select(MiningRun)).one()
    assert run.params["min_lift"] == 0.5 and run.params["since"] == "2020-01-01"
    html = manager.get(PAGE).text
    assert 'lang="vi"' in html and "0,5" in html


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"min_support": "0"}, "min_support"),
        ({"min_support": "nhiều"}, "min_support"),
        ({"min_confidence": "150"}, "min_confidence"),
        ({"max_length": "1"}, "max_length"),
        ({"max_length": "2.5"}, "max_length"),
        ({"max_basket_size": "1"}, "max_basket_size"),
        ({"since": "30/02/2025"}, "since"),
    ],
)
def test_mine_now_refuses_bad_values_naming_the_field(ss_crm, browser, form, field):
    load_sku_baskets(ss_crm, SMALL)
    response = browser(ss_crm, MANAGER).post(f"{PAGE}/mine", form)
    assert response.status_code == 422
    assert f"{field}: " in response.text
    assert f'value="{form[field]}"' in response.text  # the form as typed
    assert count(ss_crm, MiningRun) == 0


def test_refused_mining_from_the_page(ss_crm, browser):
    load_sku_baskets(ss_crm, SMALL)
    manager = browser(ss_crm, MANAGER)
    response = manager.post(f"{PAGE}/mine", {"min_support": "10"})
    assert response.status_code == 303
    html = manager.get(PAGE).text
    assert "Mining refused: min_support 0.1 over 5 baskets" in html
    with ss_crm.db.session() as session:
        assert session.scalars(select(MiningRun.status)).all() == ["failed"]
    assert count(ss_crm, Rule) == 0


def test_mute_and_unmute_with_htmx(ss_crm, browser, mined):
    manager = browser(ss_crm, MANAGER)
    key = f"{mined['d']}>{mined['b']}"
    rid = rule_id(ss_crm, key)
    html = manager.get(PAGE).text
    assert f'hx-post="/smart_sales/rules/{rid}/mute"' in html
    row = manager.post(f"{PAGE}/{rid}/mute", {"reason": "Khách sỉ"}, headers={"HX-Request": "true"})
    assert row.status_code == 200 and row.text.lstrip().startswith("<tr")
    assert "Muted" in row.text and "Khách sỉ" in row.text and f"/{rid}/unmute" in row.text
    with ss_crm.db.session() as session:
        muted = session.get(MutedRule, key)
        assert (muted.reason, muted.muted_by) == ("Khách sỉ", ss_crm.people[MANAGER])
    assert rows(manager.get(PAGE, params={"muted": "yes"}).text) == [key]
    back = manager.post(f"{PAGE}/{rid}/unmute", headers={"HX-Request": "true"})
    assert back.status_code == 200 and f"/{rid}/mute" in back.text and "Khách sỉ" not in back.text
    assert count(ss_crm, MutedRule) == 0


def test_mute_without_htmx_redirects_back_with_the_filters(ss_crm, browser, mined):
    manager = browser(ss_crm, MANAGER)
    rid = rule_id(ss_crm, f"{mined['d']}>{mined['b']}")
    response = manager.post(
        f"{PAGE}/{rid}/mute", {"reason": ""}, headers={"Referer": f"http://testserver{PAGE}?sku=d"}
    )
    assert response.status_code == 303 and response.headers["location"] == f"{PAGE}?sku=d"
    assert "muted: it raises no more alerts." in manager.get(response.headers["location"]).text
    elsewhere = manager.post(
        f"{PAGE}/{rid}/unmute", headers={"Referer": "https://evil.example/smart_sales/rules"}
    )
    assert elsewhere.headers["location"] == PAGE
    assert manager.post(f"{PAGE}/9999/mute", {"reason": ""}).status_code == 404


def test_permissions_and_csrf(ss_crm, browser, mined):
    rid = rule_id(ss_crm, f"{mined['d']}>{mined['b']}")
    seller = browser(ss_crm, SELLER)
    assert seller.post(f"{PAGE}/mine", {"min_support": "40"}).status_code == 403
    assert seller.post(f"{PAGE}/{rid}/mute", {"reason": "x"}).status_code == 403
    assert seller.post(f"{PAGE}/{rid}/unmute").status_code == 403
    marketer = browser(ss_crm, MARKETER)
    assert marketer.get(PAGE).status_code == 403
    manager = browser(ss_crm, MANAGER)
    forged = manager.client.post(
        f"{PAGE}/{rid}/mute",
        data={"reason": "x", "csrf_token": "forged"},
        headers={"Origin": "http://testserver"},
    )
    assert forged.status_code == 403
    assert count(ss_crm, MiningRun) == 1 and count(ss_crm, MutedRule) == 0


def test_menu_entry(ss_crm, browser, mined):
    seller = browser(ss_crm, SELLER).get("/").text
    assert 'href="/smart_sales/rules"' in seller and "Sales rules" in seller
    marketer = browser(ss_crm, MARKETER).get("/").text
    assert 'href="/smart_sales/rules"' not in marketer


def test_persian_page_is_right_to_left_with_persian_digits(ss_crm, browser, mined):
    with ss_crm.db.write() as session:
        session.execute(update(User).where(User.email == SELLER).values(language="fa"))
    html = browser(ss_crm, SELLER).get(PAGE).text
    assert 'dir="rtl"' in html and "۱۰۰" in html  # 100 % confidence in Persian digits
    assert len(rows(html)) == 8


def test_mine_now_raises_alerts(ss_crm, browser):
    from plugins.smart_sales.models import Alert

    one_customer_per_basket(ss_crm, ss_crm.people[SELLER])
    manager = browser(ss_crm, MANAGER)
    form = {"min_support": "40", "min_lift": "0", "raise_alerts": "yes"}
    assert manager.post(f"{PAGE}/mine", form).status_code == 303
    raised = count(ss_crm, Alert)
    assert raised > 0
    assert f"Mined 8 rules from 5 baskets; {raised} alerts raised." in manager.get(PAGE).text
