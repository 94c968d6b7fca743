"""The collaborative module's checklist: teams and leads, the sharing agreement, notification
e-mail, the digest schedule and account teams."""

from __future__ import annotations

import datetime as dt

from core import checks, users
from core.db import utcnow
from core.models import Setting
from plugins.collaborative import departments
from plugins.collaborative.delivery import LAST_DIGEST_RUN as DIGEST_RUN_KEY
from tests.plugins.collaborative.helpers import ADMIN, add_customer


def _results(crm) -> dict[str, checks.CheckResult]:
    return {r.id: r for r in checks.run(crm, module="collaborative")}


def test_people_and_data_items(co_crm):
    people = co_crm.people
    found = _results(co_crm)
    assert {r.category for r in found.values()} == {"people", "technical", "data"}
    in_teams = found["collaborative.W201"]
    assert in_teams.status == "open"
    assert "zahra@example.com" in in_teams.detail and ADMIN in in_teams.detail
    assert "an@example.com" not in in_teams.detail
    assert found["collaborative.W202"].status == "open"
    assert "care" in found["collaborative.W202"].detail
    assert found["collaborative.W203"].status == "open" and found["collaborative.W203"].attestation
    assert found["collaborative.W206"].status == "ok"  # no customer yet

    with co_crm.db.write() as session:
        customer = add_customer(session, "Khách chưa có nhóm")
        add_customer(session, "Khách đã lưu trữ", archived=True)
        departments.add_member(
            session, people["team:care"], people["zahra@example.com"], "marketing"
        )
        users.set_team(session, users.get_user(session, ADMIN), users.get_team(session, "north"))
        for team, lead in (("north", "mai"), ("south", "chi"), ("care", "dung")):
            departments.set_profile(
                co_crm, session, people[f"team:{team}"], lead_id=people[f"{lead}@example.com"]
            )
    checks.attest(co_crm, "collaborative.W203", ADMIN, "Trưởng phòng đã ký ngày 02/05")

    found = _results(co_crm)
    assert found["collaborative.W201"].status == "ok"
    assert found["collaborative.W202"].status == "ok"
    assert found["collaborative.W203"].status == "attested"
    account = found["collaborative.W206"]
    assert account.status == "open" and account.detail == "1 customer(s) without an account team"

    with co_crm.db.write() as session:
        departments.set_account_team(session, customer, people["team:north"], None)
        users.deactivate(session, users.get_user(session, "dung@example.com"))
    found = _results(co_crm)
    assert found["collaborative.W206"].status == "ok"
    assert found["collaborative.W202"].status == "open"  # care's lead left the company
    assert found["collaborative.W202"].detail.endswith("care")


def test_mail_and_digest_items(co_crm, make_crm):
    found = _results(co_crm)
    assert (
        found["collaborative.W204"].status == "open"
        and "CRM_SMTP_URL" in found["collaborative.W204"].detail
    )
    assert (
        found["collaborative.W205"].status == "open"
        and "never" in found["collaborative.W205"].detail
    )

    default_from = make_crm(load_plugins="collaborative", smtp_url="smtp://127.0.0.1:2525")
    assert "CRM_MAIL_FROM" in _results(default_from)["collaborative.W204"].detail
    configured = make_crm(
        load_plugins="collaborative", smtp_url="smtp://127.0.0.1:2525", mail_from="crm@congty.vn"
    )
    assert _results(configured)["collaborative.W204"].status == "ok"

    for age, expected in ((dt.timedelta(hours=30), "open"), (dt.timedelta(hours=2), "ok")):
        with co_crm.db.write() as session:
            session.merge(Setting(key=DIGEST_RUN_KEY, value=(utcnow() - age).isoformat()))
        assert _results(co_crm)["collaborative.W205"].status == expected
    with co_crm.db.write() as session:
        session.merge(Setting(key=DIGEST_RUN_KEY, value="not a date"))
    assert _results(co_crm)["collaborative.W205"].status == "open"
