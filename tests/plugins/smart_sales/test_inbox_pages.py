"""The alert inbox and alert pages: rendering in Vietnamese and Persian, escaping, tabs and
filters, acting and dismissing with htmx and with plain forms, "seen", the badge count, and
the checks (sign-in, CSRF, permissions, record rules)."""

from __future__ import annotations

import html
import re

import pytest

from tests.plugins.smart_sales.helpers import AN, BINH, CHI, DUNG, MAI
from tests.plugins.smart_sales.test_alerts_api import XSS, seed, state_of

INBOX = "/smart_sales/inbox"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def world(ss_crm):
    """``seed`` of ``ss_crm``, with a product named like a script."""
    return seed(ss_crm, xss=True)


def _rows(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="alert-item[^"]*" id="alert-(\d+)"', text)]


def _speaking(browser, crm, email: str, language: str):
    client = browser(crm, email)
    assert client.post("/account/language", {"language": language}).status_code == 303
    return client


def test_the_inbox_lists_my_open_alerts_by_priority_in_vietnamese(ss_crm, world, browser):
    an = _speaking(browser, ss_crm, AN, "vi")
    page = an.get(INBOX)
    assert page.status_code == 200
    text = page.text
    assert '<html lang="vi" dir="ltr">' in text
    assert _rows(text) == [world["an_churn"], world["an_a"], world["an_b"], world["an_none"]]
    assert "Nguyễn Thị Hoa" in text and f'href="/ui/customer/{world["hoa"]}"' in text
    assert "/static/smart_sales/smart_sales.css" in text
    assert 'data-badge="/smart_sales/inbox/count"' in text
    # expected value in đồng, Vietnamese style
    assert "900.000" in text and "₫" in text
    # the plain-words reason of the cross-sell names the products and the rule's figures
    row = text[text.index(f'id="alert-{world["an_none"]}"') :]
    row = row[: row.index("</li>")]
    assert "Máy lọc nước" in row and "Ấm đun siêu tốc" in row
    assert "42" in row and "3,1" in row
    # the closed alert and other people's are not in my inbox
    for other in ("an_closed", "binh", "chi", "nobody"):
        assert f'id="alert-{world[other]}"' not in text


def test_the_inbox_reads_right_to_left_in_persian(ss_crm, world, browser):
    an = _speaking(browser, ss_crm, AN, "fa")
    text = an.get(INBOX).text
    assert '<html lang="fa" dir="rtl">' in text
    assert _rows(text) == [world["an_churn"], world["an_a"], world["an_b"], world["an_none"]]
    assert "۹۰۰" in text  # Persian digits in the amounts
    assert "Nguyễn Thị Hoa" in text


def test_a_product_name_with_markup_is_shown_as_text(ss_crm, world, browser):
    an = browser(ss_crm, AN)
    for url in (INBOX, f"/smart_sales/alerts/{world['an_b']}"):
        text = an.get(url).text
        assert "<script>alert(" not in text, url
        assert html.escape(XSS, quote=False) in text or "&lt;script&gt;" in text, url
    answer = an.post(f"/smart_sales/alerts/{world['an_b']}/act", {"view": "row"}, headers=HTMX)
    assert "<script>alert(" not in answer.text and "&lt;script&gt;" in answer.text


def test_sort_and_kind_filter(ss_crm, world, browser):
    an = browser(ss_crm, AN)
    by_value = an.get(INBOX, params={"sort": "value"}).text
    assert _rows(by_value) == [world["an_churn"], world["an_none"], world["an_b"], world["an_a"]]
    recent = an.get(INBOX, params={"sort": "recent"}).text
    assert _rows(recent) == [world["an_a"], world["an_none"], world["an_b"], world["an_churn"]]
    upsell = an.get(INBOX, params={"kind": "up_sell"}).text
    assert _rows(upsell) == [world["an_a"]]
    # "all kinds" is the empty kind
    assert len(_rows(an.get(INBOX, params={"kind": ""}).text)) == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "magic"}, "kind"),
        ({"sort": "size"}, "sort"),
        ({"sort": ""}, "sort"),
        ({"scope": "galaxy"}, "scope"),
        ({"kind": "up_sell", "scope": "everyone"}, "scope"),
    ],
)
def test_unknown_choices_are_refused_naming_the_field(ss_crm, world, browser, params, field):
    an = browser(ss_crm, AN)
    answer = an.get(INBOX, params=params)
    assert answer.status_code == 422
    assert f'class="error-box" role="alert">{field}: unknown value' in answer.text
    assert 'id="alerts"' not in answer.text
    assert all(state_of(ss_crm, world[k]).state == "new" for k in ("an_a", "an_b", "an_none"))


def test_pages_follow_with_the_next_link(ss_crm, world, browser, monkeypatch):
    from plugins.smart_sales import inbox_pages

    monkeypatch.setattr(inbox_pages, "PAGE_SIZE", 3)
    an = browser(ss_crm, AN)
    first = an.get(INBOX).text
    assert _rows(first) == [world["an_churn"], world["an_a"], world["an_b"]]
    link = html.unescape(re.search(r'href="([^"]+)" id="inbox-next"', first).group(1))
    second = an.get(link).text
    assert _rows(second) == [world["an_none"]]
    assert 'id="inbox-next"' not in second and 'id="inbox-first"' in second
    garbage = an.get(INBOX, params={"cursor": "garbage!"})
    assert garbage.status_code == 422
    assert 'class="error-box" role="alert">cursor: ' in garbage.text


def test_the_team_tab_is_for_managers(ss_crm, world, browser):
    an = browser(ss_crm, AN)
    mine = an.get(INBOX).text
    assert 'id="tab-team"' not in mine
    # asking for the team without the permission shows my own inbox
    assert _rows(an.get(INBOX, params={"scope": "team"}).text) == _rows(mine)
    mai = browser(ss_crm, MAI)
    assert 'id="tab-team"' in mai.get(INBOX).text
    assert _rows(mai.get(INBOX).text) == []
    team = mai.get(INBOX, params={"scope": "team"}).text
    assert set(_rows(team)) == {
        world[k] for k in ("an_churn", "an_a", "an_b", "an_none", "binh", "nobody")
    }
    assert "Nguyễn Văn An" in team and "Trần Thị Bình" in team  # owners are named
    assert f'id="alert-{world["chi"]}"' not in team


def test_act_in_one_click_with_htmx_updates_the_row_and_the_count(ss_crm, world, browser):
    an = browser(ss_crm, AN)
    page = an.get(INBOX).text
    assert 'data-waiting="4"' in page
    answer = an.post(
        f"/smart_sales/alerts/{world['an_b']}/act", {"version": "1", "view": "row"}, headers=HTMX
    )
    assert answer.status_code == 200
    assert answer.headers["HX-Trigger"] == "crm:badges"
    assert f'id="alert-{world["an_b"]}"' in answer.text
    assert 'data-state="acted"' in answer.text
    assert f'data-act="{world["an_b"]}"' not in answer.text  # acted: only Dismiss remains
    assert f'data-dismiss="{world["an_b"]}"' in answer.text
    assert 'id="alert-count" data-waiting="3" hx-swap-oob="true"' in answer.text
    stored = state_of(ss_crm, world["an_b"])
    assert stored.state == "acted" and stored.acted_by == ss_crm.people[AN]
    assert an.get(f"{INBOX}/count").json() == {"count": 3}


def test_dismiss_with_a_reason_as_a_plain_form(ss_crm, world, browser):
    an = browser(ss_crm, AN)
    page = an.get(INBOX).text
    row = page[page.index(f'id="alert-{world["an_a"]}"') :]
    row = row[: row.index("</li>")]
    for code in ("not_relevant", "already_has", "bad_timing", "customer_declined", "other"):
        assert f'name="reason" value="{code}"' in row
    done = an.post(
        f"/smart_sales/alerts/{world['an_a']}/dismiss",
        {"reason": "already_has", "note": "Đã có máy Pro", "version": "1"},
    )
    assert done.status_code == 303 and done.headers["location"] == INBOX
    stored = state_of(ss_crm, world["an_a"])
    assert stored.state == "dismissed" and stored.dismiss_reason == "already_has"
    assert stored.dismiss_note == "Đã có máy Pro"
    after = an.get(INBOX).text
    assert world["an_a"] not in _rows(after)
    assert 'class="notice"' in after  # "Alert dismissed."
    assert an.get(f"{INBOX}/count").json() == {"count": 3}


def test_errors_show_in_the_row_and_change_nothing(ss_crm, world, browser):
    an = browser(ss_crm, AN)
    url = f"/smart_sales/alerts/{world['an_none']}"
    no_reason = an.post(f"{url}/dismiss", {"version": "1"}, headers=HTMX)
    assert no_reason.status_code == 200
    assert 'class="error-box alert-error"' in no_reason.text
    assert state_of(ss_crm, world["an_none"]).state == "new"
    an.post(f"{url}/act", {"version": "1"}, headers=HTMX)
    stale = an.post(f"{url}/dismiss", {"reason": "other", "version": "1"}, headers=HTMX)
    assert 'class="error-box alert-error"' in stale.text
    assert 'data-state="acted"' in stale.text
    assert state_of(ss_crm, world["an_none"]).state == "acted"
    # a plain form gets the error as a flash message on the inbox
    plain = an.post(f"{url}/dismiss", {"reason": "other", "version": "1"})
    assert plain.status_code == 303
    assert 'class="error-box"' in an.get(INBOX).text
    closed = an.post(f"/smart_sales/alerts/{world['an_closed']}/act", {}, headers=HTMX)
    assert 'class="error-box alert-error"' in closed.text


def test_opening_a_row_or_the_alert_page_marks_the_owners_alert_seen(ss_crm, world, browser):
    an, mai = browser(ss_crm, AN), browser(ss_crm, MAI)
    page = an.get(INBOX).text
    assert f'hx-post="/smart_sales/alerts/{world["an_b"]}/seen"' in page
    # the manager opening An's alert does not make it seen for An
    assert mai.get(f"/smart_sales/alerts/{world['an_b']}").status_code == 200
    assert mai.post(f"/smart_sales/alerts/{world['an_b']}/seen", headers=HTMX).status_code == 200
    assert state_of(ss_crm, world["an_b"]).state == "new"
    seen = an.post(f"/smart_sales/alerts/{world['an_b']}/seen", headers=HTMX)
    assert seen.status_code == 200
    assert 'data-state="seen" hx-swap-oob="true"' in seen.text
    assert state_of(ss_crm, world["an_b"]).state == "seen"
    # the alert's page posts "seen" once loaded; the GET itself changes nothing
    url = f"/smart_sales/alerts/{world['an_a']}"
    detail = an.get(url)
    assert detail.status_code == 200 and "Máy lọc Pro" in detail.text
    assert f'hx-post="{url}/seen" hx-trigger="load" hx-swap="none"' in detail.text
    assert state_of(ss_crm, world["an_a"]).state == "new"
    assert an.post(f"{url}/seen", headers=HTMX).status_code == 200
    assert state_of(ss_crm, world["an_a"]).state == "seen"
    assert 'hx-trigger="load"' not in an.get(url).text  # seen already: nothing to post
    assert an.get(f"{INBOX}/count").json() == {"count": 4}  # seen still waits for action


def test_the_alert_page_get_changes_nothing_and_seen_needs_the_csrf_token(ss_crm, world, browser):
    an, mai = browser(ss_crm, AN), browser(ss_crm, MAI)
    url = f"/smart_sales/alerts/{world['an_b']}"
    for _ in range(2):
        assert an.get(url).status_code == 200
    stored = state_of(ss_crm, world["an_b"])
    assert (stored.state, stored.seen_at, stored.version) == ("new", None, 1)
    # only the owner's page asks to mark it seen
    assert 'hx-trigger="load"' not in mai.get(url).text
    # a cross-site request (an <img>, a forged form) without the token is refused
    for headers in ({"Origin": "http://testserver"}, {"HX-Request": "true"}):
        forged = an.client.post(f"{url}/seen", headers=headers)
        assert forged.status_code == 403
    assert state_of(ss_crm, world["an_b"]).state == "new"
    # with the token (htmx sends it as a header, from the page's meta tag) it is seen
    token = an.csrf()
    done = an.client.post(
        f"{url}/seen", headers={**HTMX, "X-CSRF-Token": token, "Origin": "http://testserver"}
    )
    assert done.status_code == 200
    assert state_of(ss_crm, world["an_b"]).state == "seen"


def test_seen_refreshes_the_version_of_the_forms_so_acting_next_works(ss_crm, world, browser):
    an = browser(ss_crm, AN)
    url = f"/smart_sales/alerts/{world['an_b']}"
    page = an.get(url).text
    assert f'name="version" value="1" data-version="{world["an_b"]}"' in page
    seen = an.post(f"{url}/seen", headers=HTMX).text
    version = state_of(ss_crm, world["an_b"]).version
    assert version == 2
    alert = world["an_b"]
    assert (
        f'<input type="hidden" name="version" value="2" data-version="{alert}"'
        f" hx-swap-oob=\"outerHTML:input[data-version='{alert}']\">"
    ) in seen
    # the page's forms now carry version 2: acting is not taken for someone else's change
    done = an.post(f"{url}/act", {"version": str(version), "view": "detail"})
    assert done.status_code == 303
    assert state_of(ss_crm, world["an_b"]).state == "acted"


def test_the_alert_page_acts_with_plain_forms(ss_crm, world, browser):
    an = browser(ss_crm, AN)
    url = f"/smart_sales/alerts/{world['an_churn']}"
    text = an.get(url).text
    assert 'hx-post="' not in text.split('class="alert-actions"')[1]  # plain forms here
    assert 'name="view" value="detail"' in text
    done = an.post(f"{url}/act", {"view": "detail"})
    assert done.status_code == 303 and done.headers["location"] == url
    page = an.get(url).text
    assert 'data-state="acted"' in page and "Nguyễn Văn An" in page
    closed = an.get(f"/smart_sales/alerts/{world['an_closed']}").text
    assert 'class="alert-actions"' not in closed


def test_pages_need_sign_in_permission_and_a_visible_customer(ss_crm, world, browser):
    anonymous = browser(ss_crm)
    for url in (INBOX, f"{INBOX}/count", f"/smart_sales/alerts/{world['an_b']}"):
        answer = anonymous.get(url, follow_redirects=False)
        assert answer.status_code == 303 and "/login" in answer.headers["location"], url
    dung = browser(ss_crm, DUNG)
    assert dung.get(INBOX).status_code == 403
    assert dung.get(f"{INBOX}/count").status_code == 403
    chi = browser(ss_crm, CHI)
    assert chi.get(f"/smart_sales/alerts/{world['an_b']}").status_code == 404
    assert chi.post(f"/smart_sales/alerts/{world['an_b']}/act", {}).status_code == 404
    assert chi.post(f"/smart_sales/alerts/{world['an_b']}/seen", {}).status_code == 404
    assert state_of(ss_crm, world["an_b"]).state == "new"
    binh = browser(ss_crm, BINH)  # same team: sees An's customer's alert, may act on it
    assert binh.get(f"/smart_sales/alerts/{world['an_b']}").status_code == 200


def test_forms_need_the_csrf_token(ss_crm, world, browser):
    an = browser(ss_crm, AN)
    forged = an.client.post(
        f"/smart_sales/alerts/{world['an_b']}/act",
        data={"view": "row"},
        headers={"Origin": "http://testserver"},
    )
    assert forged.status_code == 403
    assert state_of(ss_crm, world["an_b"]).state == "new"
