"""Departments (kind, lead, members with a role), account teams and their record rule, through
the API, the generated UI and the CLI."""

from __future__ import annotations

import json

from sqlalchemy import select

from core.normalize import search_key
from plugins.collaborative.models import AccountTeam, Member, TeamProfile
from tests.plugins.collaborative.helpers import ADMIN, add_customer

TEAMS = "/api/collaborative/teams"


def _team(rows: list[dict], name: str) -> dict:
    return next(t for t in rows if t["name"] == name)


def test_managers_set_kind_lead_and_members(co_crm, api):
    north, care = co_crm.people["team:north"], co_crm.people["team:care"]
    mai, binh = api(co_crm, "mai@example.com"), api(co_crm, "binh@example.com")

    listed = binh.get(TEAMS).json()
    members = {m["email"]: m for m in _team(listed, "north")["members"]}
    assert set(members) == {"an@example.com", "binh@example.com", "mai@example.com"}
    assert (
        members["binh@example.com"]["role"] == "member" and members["binh@example.com"]["primary"]
    )

    assert binh.put(f"{TEAMS}/{north}", json={"kind": "sales"}).status_code == 403
    bad = mai.put(f"{TEAMS}/{north}", json={"kind": "astrology"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "kind"]
    unknown_lead = mai.put(f"{TEAMS}/{care}", json={"kind": "service", "lead_id": 9999})
    assert unknown_lead.status_code == 422
    assert unknown_lead.json()["detail"][0]["loc"] == ["body", "lead_id"]
    assert mai.put(f"{TEAMS}/9999", json={"kind": "sales"}).status_code == 404

    # a lead from another team becomes a member of the team they lead
    chi = co_crm.people["chi@example.com"]
    saved = mai.put(
        f"{TEAMS}/{care}", json={"kind": "service", "lead_id": chi, "description": "CSKH"}
    )
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert (body["kind"], body["lead_id"], body["lead_name"]) == ("service", chi, "Lê Minh Chi")
    assert {m["email"]: m["role"] for m in body["members"]}["chi@example.com"] == "lead"

    added = mai.post(
        f"{TEAMS}/{care}/members",
        json={"user_id": co_crm.people["binh@example.com"], "role": "backup"},
    )
    assert added.status_code == 201
    roles = {m["email"]: (m["role"], m["primary"]) for m in added.json()["members"]}
    assert roles["binh@example.com"] == ("backup", False)
    assert mai.post(f"{TEAMS}/{care}/members", json={"user_id": 9999}).json()["detail"][0][
        "loc"
    ] == ["body", "user_id"]

    # a primary team cannot be left here; a membership can
    dung = co_crm.people["dung@example.com"]
    assert mai.delete(f"{TEAMS}/{care}/members/{dung}").status_code == 422
    assert mai.delete(f"{TEAMS}/{care}/members/{chi}").status_code == 204
    assert mai.delete(f"{TEAMS}/{care}/members/{chi}").status_code == 404
    with co_crm.db.session() as session:
        assert session.get(Member, (care, chi)) is None
        assert session.get(TeamProfile, care).lead_id is None  # the lead left


def test_account_team_widens_what_sales_see_everywhere(co_crm, api, browser):
    people = co_crm.people
    with co_crm.db.write() as session:
        customer = add_customer(
            session,
            "Công ty Sao Mai",
            owner=people["chi@example.com"],
            search_key=search_key("Công ty Sao Mai"),
        )
    binh, admin = api(co_crm, "binh@example.com"), api(co_crm, ADMIN)
    page = browser(co_crm, "binh@example.com")
    mai_page = browser(co_crm, "mai@example.com")

    def seen() -> dict[str, bool]:
        listed = binh.get("/api/customers").json()
        searched = binh.get("/api/customers", params={"q": "cong ty sao"}).json()
        export = mai_page.get("/ui/customer/export.csv")
        assert export.status_code == 200
        return {
            "list": customer in [c["id"] for c in listed["items"]],
            "count": listed["total"] == 1,
            "search": [c["id"] for c in searched["items"]] == [customer] and searched["total"] == 1,
            "read": binh.get(f"/api/customers/{customer}").status_code == 200,
            "ui list": "Công ty Sao Mai" in page.get("/ui/customer").text,
            "360": page.get(f"/ui/customer/{customer}").status_code == 200,
            "export": "Công ty Sao Mai" in export.text,
        }

    assert not any(seen().values())
    assert binh.get(f"/api/customers/{customer}").status_code == 404

    url = f"/api/collaborative/account-teams/{customer}"
    assert binh.put(url, json={"team_id": people["team:north"]}).status_code == 403
    set_ = admin.put(url, json={"team_id": people["team:north"]})
    assert set_.status_code == 200, set_.text
    assert set_.json()["team"] == "Kinh doanh miền Bắc"
    assert all(seen().values())
    assert binh.get(url).json()["team_id"] == people["team:north"]

    assert admin.put(url, json={"team_id": people["team:care"]}).status_code == 200
    assert not any(seen().values())
    assert binh.get(url).status_code == 404


def test_account_team_errors_and_invisible_customers(co_crm, api):
    people = co_crm.people
    with co_crm.db.write() as session:
        south = add_customer(session, "Nhà thuốc Phúc An", owner=people["chi@example.com"])
        north = add_customer(session, "Quán Hà Nội", owner=people["an@example.com"])
    mai, admin = api(co_crm, "mai@example.com"), api(co_crm, ADMIN)
    assert (
        mai.put(
            f"/api/collaborative/account-teams/{south}", json={"team_id": people["team:north"]}
        ).status_code
        == 404
    )
    assert mai.get(f"/api/collaborative/account-teams/{south}").status_code == 404
    assert (
        admin.put(
            "/api/collaborative/account-teams/99999", json={"team_id": people["team:north"]}
        ).status_code
        == 404
    )
    bad = mai.put(f"/api/collaborative/account-teams/{north}", json={"team_id": 9999})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "team_id"]
    with co_crm.db.session() as session:
        assert session.scalar(select(AccountTeam)) is None


def test_new_customer_gets_its_owners_team(co_crm, api):
    chi = api(co_crm, "chi@example.com")
    made = chi.post("/api/customers", json={"kind": "person", "display_name": "Đỗ Thị Hoa"})
    assert made.status_code == 201, made.text
    unowned = api(co_crm, ADMIN).post(
        "/api/customers", json={"kind": "person", "display_name": "Khách lẻ", "owner_id": None}
    )
    assert unowned.status_code == 201, unowned.text
    with co_crm.db.session() as session:
        rows = dict(session.execute(select(AccountTeam.customer_id, AccountTeam.team_id)).all())
    assert rows.get(made.json()["id"]) == co_crm.people["team:south"]
    if unowned.json()["owner_id"] is None:
        assert unowned.json()["id"] not in rows


def test_departments_page_shows_and_changes_teams(co_crm, browser):
    care = co_crm.people["team:care"]
    mai = browser(co_crm, "mai@example.com")
    html = mai.get("/collaborative/teams").text
    assert "Chăm sóc" in html and "Phạm Dũng" in html and 'action="/collaborative/teams/' in html
    saved = mai.post(
        f"/collaborative/teams/{care}",
        data={
            "kind": "service",
            "lead_id": str(co_crm.people["dung@example.com"]),
            "description": "<b>CSKH</b>",
        },
    )
    assert saved.status_code in (200, 303)
    html = mai.get("/collaborative/teams").text
    assert "&lt;b&gt;CSKH&lt;/b&gt;" in html and "<b>CSKH</b>" not in html
    with co_crm.db.session() as session:
        profile = session.get(TeamProfile, care)
        assert (profile.kind, profile.lead_id) == ("service", co_crm.people["dung@example.com"])

    binh = browser(co_crm, "binh@example.com")
    assert 'action="/collaborative/teams/' not in binh.get("/collaborative/teams").text
    assert binh.post(f"/collaborative/teams/{care}", data={"kind": "sales"}).status_code == 403
    assert browser(co_crm, "zahra@example.com").get("/collaborative/teams").status_code == 200


def test_cli_manages_departments(co_crm, cli):
    env = {"CRM_LOAD_PLUGINS": "collaborative"}
    with co_crm.db.write() as session:
        customer = add_customer(session, "Hợp tác xã Bình Minh")

    set_ = cli(
        "collaborative",
        "team-set",
        "care",
        "--kind",
        "service",
        "--lead",
        "dung@example.com",
        **env,
    )
    assert set_.exit_code == 0, set_.output
    added = cli(
        "collaborative", "member-add", "care", "binh@example.com", "--role", "backup", **env
    )
    assert added.exit_code == 0, added.output
    assigned = cli("collaborative", "account-team", str(customer), "care", **env)
    assert assigned.exit_code == 0, assigned.output

    listed = cli("collaborative", "teams", "--format", "json", **env)
    care = _team(json.loads(listed.output), "care")
    assert (care["kind"], care["lead_name"]) == ("service", "Phạm Dũng")
    assert {m["email"]: m["role"] for m in care["members"]}["binh@example.com"] == "backup"
    assert "Chăm sóc" in cli("collaborative", "teams", **env).output

    removed = cli("collaborative", "member-remove", "care", "binh@example.com", **env)
    assert removed.exit_code == 0, removed.output
    with co_crm.db.session() as session:
        assert session.get(AccountTeam, customer).team_id == co_crm.people["team:care"]
        assert (
            session.get(Member, (co_crm.people["team:care"], co_crm.people["binh@example.com"]))
            is None
        )

    for args, message in (
        (("team-set", "finance", "--kind", "sales"), "no team 'finance'"),
        (("member-add", "care", "nobody@example.com"), "nobody@example.com"),
        (("team-set", "care", "--kind", "astrology"), "kind"),
        (("member-remove", "care", "binh@example.com"), "not a member"),
        (("account-team", "99999", "care"), "customer_id"),
    ):
        result = cli("collaborative", *args, **env)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output
