"""The generated web UI: sign-in, CSRF, record rules, forms, exports, kanban, extensions."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from core.customers.models import Customer
from core.models import AuditLog
from tests.web.conftest import PASSWORD, ids_on


def _customer(browser, name: str, **extra) -> int:
    response = browser.post("/ui/customer/new", {"kind": "person", "display_name": name, **extra})
    assert response.status_code == 303, response.text
    return int(re.search(r"/ui/customer/(\d+)", response.headers["location"]).group(1))


def test_pages_need_a_login_and_the_login_form_signs_in(browser):
    anonymous = browser()
    for path in ("/", "/ui/customer", "/ui/customer/1", "/admin/modules", "/account"):
        response = anonymous.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")
    wrong = anonymous.login("an@example.com", "not-the-password")
    assert wrong.status_code == 401
    assert "Wrong e-mail or password." in wrong.text
    assert anonymous.login("an@example.com").status_code == 303
    assert anonymous.get("/ui/customer").status_code == 200


def test_every_ui_route_refuses_anonymous_users_and_forms_without_csrf(app, browser):
    """Generated from the route table, so a new page cannot slip past: every page not declared
    public sends anonymous callers to the login page, and a form posted without the CSRF token
    is refused before anything happens (the uiext plugin's pages included)."""
    from core.web.access import iter_routes

    anonymous = browser()
    signed_in = browser()
    signed_in.login("admin@example.com", "Admin-pass-123")
    checked = 0
    for entry in iter_routes(app):
        if entry.path.startswith("/api/") or entry.path in ("/openapi.json", "/docs"):
            continue
        if entry.access is not None and entry.access.public:
            continue
        path = re.sub(r"\{[a-z_]+:int\}", "1", entry.path)
        path = path.replace("{name}", "customer").replace("{slot_id}", "core.identities")
        path = re.sub(r"\{[a-z_]+(:[a-z]+)?\}", "x", path)
        response = anonymous.client.request(
            entry.method, path, headers={"Accept": "text/html"}, follow_redirects=False
        )
        assert response.status_code in (303, 403), (entry.method, path, response.status_code)
        if entry.method == "POST":
            # signed in, our origin, but no CSRF token: refused before anything happens
            response = signed_in.client.post(
                path, headers={"Origin": "http://testserver"}, follow_redirects=False
            )
            assert response.status_code == 403, (entry.method, path)
        checked += 1
    assert checked > 20


def test_cross_site_form_posts_are_refused_even_with_the_token(browser, ui_crm):
    user = browser()
    user.login("an@example.com")
    response = user.post(
        "/ui/customer/new",
        {"kind": "person", "display_name": "Evil"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    with ui_crm.db.session() as session:
        assert session.scalar(select(func.count()).where(Customer.display_name == "Evil")) == 0


def test_logout_ends_the_session(browser):
    user = browser()
    user.login("an@example.com")
    cookie = user.client.cookies.get("crm_session")
    assert user.post("/logout").status_code == 303
    user.client.cookies.set("crm_session", cookie)
    assert user.get("/ui/customer", follow_redirects=False).status_code == 303


def test_unaccented_search_and_phone_search_find_the_customer(browser):
    user = browser()
    user.login("an@example.com")
    cid = _customer(user, "Nguyễn Văn Đức", phone="0912 345 678")
    _customer(user, "Trần Thị Lan")
    for query in ("nguyen van duc", "NGUYEN", "+84912345678", "0912345678"):
        page = user.get("/ui/customer", params={"q": query})
        assert ids_on(page.text) == [cid], query
    fragment = user.get(
        "/ui/customer",
        params={"q": "tran"},
        headers={"HX-Request": "true", "HX-Target": "list-results"},
    )
    assert fragment.text.lstrip().startswith('<section id="list-results"')
    assert "Trần Thị Lan" in fragment.text


def test_a_sales_user_never_sees_another_teams_customers(browser, ui_crm):
    from core import users

    with ui_crm.db.write() as session:  # chi may export (as managers may); scope stays "team"
        users.set_roles(session, users.get_user(session, "chi@example.com"), ["sales", "manager"])
    an, binh, chi = browser(), browser(), browser()
    an.login("an@example.com")
    binh.login("binh@example.com")
    chi.login("chi@example.com")
    north_id = _customer(an, "Khách Miền Bắc", email="bac@example.vn")
    south_id = _customer(chi, "Khách Miền Nam")
    # same team sees it, the other team does not: list, search, count, export, URL, slot
    assert north_id in ids_on(binh.get("/ui/customer").text)
    page = chi.get("/ui/customer")
    assert north_id not in ids_on(page.text) and south_id in ids_on(page.text)
    assert "1 records" in page.text
    assert ids_on(chi.get("/ui/customer", params={"q": "khach mien bac"}).text) == []
    assert ids_on(chi.get("/ui/customer", params={"q": "bac@example.vn"}).text) == []
    exported = chi.get("/ui/customer/export.csv").text
    assert "Khách Miền Nam" in exported and "Khách Miền Bắc" not in exported
    assert chi.get(f"/ui/customer/{north_id}").status_code == 404
    assert chi.get(f"/ui/customer/{north_id}/edit").status_code == 404
    assert chi.get(f"/ui/slots/core.identities/{north_id}").status_code == 404
    edit = chi.post(f"/ui/customer/{north_id}/edit", {"kind": "person", "display_name": "Hacked"})
    assert edit.status_code == 404
    # and the API agrees
    response = chi.client.get(f"/api/customers/{north_id}")
    assert response.status_code == 404
    listed = chi.client.get("/api/customers").json()
    assert [c["id"] for c in listed["items"]] == [south_id] and listed["total"] == 1
    with ui_crm.db.session() as session:
        assert session.get(Customer, north_id).display_name == "Khách Miền Bắc"


def test_form_validation_errors_then_success_are_audited(browser, ui_crm):
    user = browser()
    user.login("an@example.com")
    bad = user.post(
        "/ui/customer/new", {"kind": "person", "display_name": "Lê Minh", "email": "not-an-email"}
    )
    assert bad.status_code == 422
    assert 'id="error-email"' in bad.text and 'aria-invalid="true"' in bad.text
    assert 'value="Lê Minh"' in bad.text  # what was typed is kept
    required = user.post("/ui/customer/new", {"kind": ""})
    assert required.status_code == 422 and 'id="error-kind"' in required.text
    with ui_crm.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 0
    cid = _customer(user, "Lê Minh", email="le.minh@example.vn", tags="vip, hà nội")
    detail = user.get(f"/ui/customer/{cid}")
    assert "le.minh@example.vn" in detail.text and "vip" in detail.text
    edit = user.get(f"/ui/customer/{cid}/edit").text
    version = re.search(r'name="version" value="(\d+)"', edit).group(1)
    saved = user.post(
        f"/ui/customer/{cid}/edit",
        {
            "kind": "person",
            "display_name": "Lê Minh Tâm",
            "email": "tam@example.vn",
            "version": version,
        },
    )
    assert saved.status_code == 303
    with ui_crm.db.session() as session:
        customer = session.get(Customer, cid)
        assert customer.display_name == "Lê Minh Tâm"
        assert [i.value for i in customer.identities if i.channel == "email"] == ["tam@example.vn"]
        rows = session.scalars(
            select(AuditLog).where(AuditLog.model == "customer", AuditLog.record_id == str(cid))
        ).all()
        assert {r.action for r in rows} >= {"create", "update"}
        assert all(r.actor == "an@example.com" for r in rows)


def test_a_stale_form_gets_409_and_overwrites_nothing(browser, ui_crm):
    first, second = browser(), browser()
    first.login("an@example.com")
    second.login("binh@example.com")
    cid = _customer(first, "Phạm Hồng")
    form = {"kind": "person", "version": "1"}
    assert (
        second.post(
            f"/ui/customer/{cid}/edit", {**form, "display_name": "Phạm Hồng Nhung"}
        ).status_code
        == 303
    )
    stale = first.post(f"/ui/customer/{cid}/edit", {**form, "display_name": "Phạm Hồng Hà"})
    assert stale.status_code == 409
    assert "Someone else changed this record meanwhile" in stale.text
    assert 'value="Phạm Hồng Nhung"' in stale.text
    with ui_crm.db.session() as session:
        assert session.get(Customer, cid).display_name == "Phạm Hồng Nhung"


def test_export_streams_the_filtered_list_with_formulas_neutralised(browser, ui_crm):
    from core import users

    with ui_crm.db.write() as session:
        users.set_roles(session, users.get_user(session, "dung@example.com"), ["manager"])
    user = browser()
    user.login("admin@example.com", "Admin-pass-123")
    _customer(user, '=HYPERLINK("http://evil")')
    _customer(user, "Hoàng Yến", tags="vip")
    _customer(user, "Đỗ Quang", tags="new")
    rows = list(
        csv.reader(io.StringIO(user.get("/ui/customer/export.csv", params={"tag": "vip"}).text))
    )
    assert [r[1] for r in rows[1:]] == ["Hoàng Yến"]
    everything = user.get("/ui/customer/export.csv").text
    assert "'=HYPERLINK" in everything
    with ui_crm.db.session() as session:
        assert session.scalar(select(func.count()).where(AuditLog.action == "export")) == 2
    sales = browser()
    sales.login("an@example.com")
    assert sales.get("/ui/customer/export.csv").status_code == 403  # no customer:export


def test_stored_markup_is_shown_as_text(browser):
    user = browser()
    user.login("an@example.com")
    payload = "<img src=x onerror=alert(1)>"
    cid = _customer(user, payload)
    for page in (user.get("/ui/customer").text, user.get(f"/ui/customer/{cid}").text):
        assert payload not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>" not in user.get("/").text  # no inline script anywhere (CSP forbids it)


def test_security_headers_on_pages(browser):
    user = browser()
    response = user.get("/login")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "samesite=strict" in response.headers["set-cookie"].lower()


def test_plugin_extends_the_customer_views_and_fills_a_360_slot(browser, ui_crm):
    user = browser()
    user.login("an@example.com")
    created = user.post(
        "/ui/customer/new",
        {"kind": "person", "display_name": "Vũ Thảo", "uiext_nickname": "Thảo béo"},
    )
    cid = int(re.search(r"/ui/customer/(\d+)", created.headers["location"]).group(1))
    listing = user.get("/ui/customer").text
    assert "Nickname" in listing and "Thảo béo" in listing
    assert 'name="uiext_nickname"' in user.get(f"/ui/customer/{cid}/edit").text
    detail = user.get(f"/ui/customer/{cid}")
    assert 'id="tab-uiext"' in detail.text and "Thảo béo" in detail.text
    assert 'hx-get="/ui/slots/uiext.deals/' in detail.text
    deal = user.post(
        "/ui/deal/new",
        {
            "title": "Bán 100 áo",
            "stage": "new",
            "customer_id": str(cid),
            "amount_minor": "1,250,000",
        },
    )
    assert deal.status_code == 303, deal.text
    slot = user.get(f"/ui/slots/uiext.deals/{cid}")
    assert slot.status_code == 200 and "Bán 100 áo" in slot.text
    broken = user.get(f"/ui/slots/uiext.broken/{cid}")
    assert broken.status_code == 200 and "could not be loaded" in broken.text
    filtered = user.get("/ui/customer", params={"uiext_has_deal": "yes"})
    assert ids_on(filtered.text) == [cid]


def test_kanban_move_is_saved_audited_and_checks_the_version(browser, ui_crm):
    from crm_testplugins.uiext.models import UiextDeal

    user = browser()
    user.login("an@example.com")
    made = user.post("/ui/deal/new", {"title": "Hợp đồng A", "stage": "new"})
    deal_id = int(re.search(r"/ui/deal/(\d+)", made.headers["location"]).group(1))
    board = user.get("/ui/deal/kanban").text
    assert f'id="card-{deal_id}"' in board
    assert (
        user.post(f"/ui/deal/{deal_id}/move", {"group": "won", "version": "1"}).status_code == 303
    )
    assert (
        user.post(f"/ui/deal/{deal_id}/move", {"group": "lost", "version": "1"}).status_code == 409
    )
    assert (
        user.post(f"/ui/deal/{deal_id}/move", {"group": "nowhere", "version": "2"}).status_code
        == 422
    )
    with ui_crm.db.session() as session:
        deal = session.get(UiextDeal, deal_id)
        assert (deal.stage, deal.owner_id is not None) == ("won", True)
        change = session.scalars(
            select(AuditLog).where(AuditLog.model == "uiext.deal", AuditLog.action == "update")
        ).one()
        assert change.before == {"stage": "new"} and change.after == {"stage": "won"}
    other_team = browser()
    other_team.login("chi@example.com")
    assert f'id="card-{deal_id}"' not in other_team.get("/ui/deal/kanban").text
    assert (
        other_team.post(f"/ui/deal/{deal_id}/move", {"group": "lost", "version": "2"}).status_code
        == 404
    )


def test_dashboard_widgets_count_what_the_user_may_see(browser):
    an, chi = browser(), browser()
    an.login("an@example.com")
    chi.login("chi@example.com")
    _customer(an, "Một")
    _customer(an, "Hai")
    home = an.get("/").text
    assert 'hx-get="/ui/widgets/core.customers"' in home
    assert 'data-value="2"' in an.get("/ui/widgets/core.customers").text
    assert 'data-value="0"' in chi.get("/ui/widgets/core.customers").text


def test_admin_area_shows_modules_users_tokens_checklist_and_audit(browser, ui_crm):
    admin = browser()
    admin.login("admin@example.com", "Admin-pass-123")
    assert 'id="module-uiext"' in admin.get("/admin/modules").text
    added = admin.post(
        "/admin/users",
        {"email": "em@example.com", "name": "Em", "roles": "service", "team": "south"},
    )
    # the generated password is in this response only, never in a URL
    assert added.status_code == 200 and "Added em@example.com." in added.text
    password = re.search(r'id="new-password">([^<]+)<', added.text).group(1)
    assert password not in admin.get("/admin/users").text
    newcomer = browser()
    assert newcomer.login("em@example.com", password).status_code == 303
    token = admin.post("/admin/tokens", {"email": "em@example.com", "name": "zapier"})
    secret = re.search(r'id="new-token">([^<]+)<', token.text).group(1)
    me = admin.client.get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.json()["email"] == "em@example.com"
    checklist = admin.get("/admin/checklist").text
    attestation = re.search(r'action="/admin/checklist/([^"]+)/attest"', checklist).group(1)
    assert (
        admin.post(
            f"/admin/checklist/{attestation}/attest", {"note": "checked the backups restore"}
        ).status_code
        == 303
    )
    audit = admin.get("/admin/audit", params={"action": "attest"}).text
    assert "checked the backups restore" in audit or attestation in audit
    sales = browser()
    sales.login("an@example.com")
    assert sales.get("/admin/users").status_code == 403
    assert sales.post("/admin/users", {"email": "x@example.com"}).status_code == 403


def test_password_change_ends_sessions(browser):
    user = browser()
    user.login("an@example.com")
    other_device = browser()
    other_device.login("an@example.com")
    wrong = user.post(
        "/account/password", {"current": "nope", "new": "New-pass-456!", "confirm": "New-pass-456!"}
    )
    assert wrong.status_code == 422 and "Wrong password." in wrong.text
    assert (
        user.post(
            "/account/password",
            {"current": PASSWORD, "new": "New-pass-456!", "confirm": "New-pass-456!"},
        ).status_code
        == 303
    )
    assert other_device.get("/ui/customer", follow_redirects=False).status_code == 303
    assert browser().login("an@example.com", "New-pass-456!").status_code == 303


@pytest.mark.parametrize(("language", "direction"), [("vi", "ltr"), ("fa", "rtl")])
def test_language_choice_sets_lang_and_direction(browser, language, direction):
    user = browser()
    user.login("an@example.com")
    assert user.post("/account/language", {"language": language}).status_code == 303
    page = user.get("/ui/customer").text
    assert f'<html lang="{language}" dir="{direction}">' in page
    assert "Customers" not in re.search(r"<h1>(.*?)</h1>", page).group(1)


def test_row_actions_run_on_visible_records_only(browser, ui_crm):
    from crm_testplugins.uiext.models import UiextDeal

    an, chi = browser(), browser()
    an.login("an@example.com")
    chi.login("chi@example.com")
    made = an.post("/ui/deal/new", {"title": "Hợp đồng B", "stage": "new"})
    deal_id = int(re.search(r"/ui/deal/(\d+)", made.headers["location"]).group(1))
    listing = an.get("/ui/deal").text
    assert 'form="row-action-win"' in listing and f'value="{deal_id}"' in listing
    assert chi.post("/ui/deal/actions/win", {"ids": str(deal_id)}).status_code == 404
    with ui_crm.db.session() as session:
        assert session.get(UiextDeal, deal_id).stage == "new"
    done = an.post("/ui/deal/actions/win", {"ids": str(deal_id)})
    assert done.status_code == 200 and "1 deal(s) won" in done.text
    with ui_crm.db.session() as session:
        assert session.get(UiextDeal, deal_id).stage == "won"


def test_views_that_cannot_page_fast_are_refused_and_widgets_follow_column_types(ui_crm):
    from core.ui import Column, Field, ListView
    from core.ui import registry as reg

    registry = reg.build(ui_crm)
    bad = [
        ListView("deal", [Column("amount_minor", sortable=True)]),  # no index
        ListView("deal", [Column("title")], default_sort="title"),  # not a sortable column
        ListView("deal", [Column("customer_id", sortable=True)]),  # indexed but NULL-able
        ListView("nothing", [Column("x")]),
    ]
    for view in bad:
        with pytest.raises(reg.ViewError):
            reg._check(registry, view)
    assert registry.problems == []  # the shipped views are fine
    deal = registry.resources["deal"].model
    assert reg.widget_for(deal, Field("amount_minor")) == "money"  # from the column's info
    assert reg.widget_for(deal, Field("created_at")) == "datetime"
    assert reg.widget_for(deal, Field("customer_id")) == "reference"
    assert reg.widget_for(deal, Field("title", widget="textarea")) == "textarea"  # overridden


def test_modules_can_be_disabled_and_enabled_from_the_admin_area(browser, ui_crm):
    from core import modules

    admin = browser()
    admin.login("admin@example.com", "Admin-pass-123")
    response = admin.post("/admin/modules/uiext/disable")
    assert response.status_code == 303
    assert "Restart the server" in admin.get(response.headers["location"]).text
    assert modules.states(ui_crm)["uiext"].state == "disabled"
    assert admin.post("/admin/modules/uiext/enable").status_code == 303
    assert modules.states(ui_crm)["uiext"].state == "installed"
    refused = admin.post("/admin/modules/nosuchmodule/enable")
    assert "nosuchmodule" in admin.get(refused.headers["location"]).text


def test_messages_on_pages_cannot_be_forged_through_the_url(browser):
    admin = browser()
    admin.login("admin@example.com", "Admin-pass-123")
    page = admin.get("/admin/users", params={"error": "<b>Call +1 555</b>", "message": "hi"}).text
    assert "Call +1 555" not in page and "<b>" not in page
    refused = admin.post("/admin/checklist/core.W011/attest", {"note": ""})
    assert refused.status_code == 303 and "error" not in refused.headers["location"]
    assert "Write how you checked it." in admin.get(refused.headers["location"]).text
    assert "Write how you checked it." not in admin.get("/admin/checklist").text  # shown once


def test_field_errors_are_translated_with_their_values(browser):
    user = browser()
    user.login("an@example.com")
    user.post("/account/language", {"language": "vi"})
    first = user.post(
        "/ui/customer/new", {"kind": "person", "display_name": "A", "phone": "0912 345 678"}
    )
    assert first.status_code == 303
    clash = user.post(
        "/ui/customer/new", {"kind": "person", "display_name": "B", "phone": "+84912345678"}
    )
    assert clash.status_code == 422
    assert "+84912345678 đã thuộc về khách hàng" in clash.text
    too_long = user.post("/ui/customer/new", {"kind": "person", "display_name": "x" * 250})
    assert "Tối đa 200 ký tự." in too_long.text
