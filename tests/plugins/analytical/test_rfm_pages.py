"""The RFM and lifetime-value pages and the "Lifetime value" panel: permissions, the empty state,
figures equal to independent computations, record rules on the customer lists."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from sqlalchemy import select, update

from core import users
from core.customers.models import Customer
from plugins.analytical import clv_snapshot, rfm
from plugins.analytical.models import ClvScore
from tests.plugins.analytical.test_clv_snapshot import AS_OF, simulate_orders
from tests.plugins.analytical.test_rfm import _generate, _reference
from tests.web.conftest import Browser

PASSWORD = "Password-123!"
RFM_AS_OF = dt.date(2026, 6, 30)


@pytest.fixture
def people(an_crm):
    """Teams north and south; an: sales + manager (team scope, may read analytics) in the
    north; chi: sales in the south (no analytics permission)."""
    with an_crm.db.write() as session:
        north = users.add_team(session, "north", "Miền Bắc")
        south = users.add_team(session, "south", "Miền Nam")
        made = {}
        for email, team, roles in (
            ("an@example.com", north, ["sales", "manager"]),
            ("chi@example.com", south, ["sales"]),
        ):
            user = users.create_user(session, email, email.split("@")[0].title(), PASSWORD, roles)
            users.set_team(session, user, team)
            made[email.split("@")[0]] = user.id
    return made


def _admin(browser) -> Browser:
    return browser("admin@example.com", "Admin-pass-123")


def _split_owners(crm, people) -> tuple[set[int], set[int]]:
    """Odd customer ids owned by chi (south), even ones by an (north)."""
    with crm.db.write() as session:
        ids = list(session.scalars(select(Customer.id)))
        south = {i for i in ids if i % 2}
        session.execute(
            update(Customer).where(Customer.id.in_(south)).values(owner_id=people["chi"])
        )
        session.execute(
            update(Customer).where(Customer.id.not_in(south)).values(owner_id=people["an"])
        )
    return set(ids) - south, south


def _listed(page: str) -> set[int]:
    return {int(i) for i in re.findall(r'data-customer="(\d+)"', page)}


@pytest.mark.parametrize("path", ["/analytical/rfm", "/analytical/clv"])
def test_pages_need_sign_in_and_the_permission(an_crm, people, browser, path):
    anonymous = browser().get(path, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")
    assert browser("chi@example.com").get(path).status_code == 403
    empty = browser("an@example.com").get(path)
    assert empty.status_code == 200
    assert "Not computed yet" in empty.text


def test_rfm_page_shows_the_snapshot(an_crm, people, browser):
    orders = _generate(an_crm, customers=120, seed=4)
    north, south = _split_owners(an_crm, people)
    with an_crm.db.write() as session:
        rfm.refresh(session, RFM_AS_OF - dt.timedelta(days=30))  # an older run: the history
        rfm.refresh(session, RFM_AS_OF)
    expected = _reference(orders, RFM_AS_OF)
    admin = _admin(browser)
    page = admin.get("/analytical/rfm").text
    # segment sizes: one table row per segment, counts equal to the independent reference
    rows = dict(
        re.findall(r'<tr data-segment="(\w+)">\s*<td><a[^>]*>[^<]*</a></td>\s*<td>([\d,]+)<', page)
    )
    counted: dict[str, int] = {}
    for v in expected.values():
        name = rfm.segment_of(v["r"], v["f"])
        counted[name] = counted.get(name, 0) + 1
    assert {k: int(v.replace(",", "")) for k, v in rows.items() if v != "0"} == counted
    # the R x F grid
    for r in range(1, 6):
        for f in range(1, 6):
            cell = re.search(rf'data-r="{r}" data-f="{f}">([\d,]+)<', page).group(1)
            want = sum(1 for v in expected.values() if (v["r"], v["f"]) == (r, f))
            assert int(cell.replace(",", "")) == want, (r, f)
    charts = re.findall(r'data-chart-type="(\w+)" data-chart="([^"]+)"', page)
    assert [kind for kind, _ in charts] == ["bar", "line"]
    history = html.unescape(charts[1][1])
    assert (
        RFM_AS_OF.isoformat() in history
        and (RFM_AS_OF - dt.timedelta(days=30)).isoformat() in history
    )
    assert page.count("How is this computed?") >= 4
    # the top customers of a segment, within the record rules
    segment = max(counted, key=counted.get)
    members = {c for c, v in expected.items() if rfm.segment_of(v["r"], v["f"]) == segment}
    everyone = _listed(admin.get("/analytical/rfm", params={"segment": segment}).text)

    def top(ids: set[int]) -> set[int]:  # highest total spent first, then by id; 50 at most
        return set(sorted(ids, key=lambda c: (-expected[c]["monetary"], c))[:50])

    assert everyone == top(members)
    mine = _listed(
        browser("an@example.com").get("/analytical/rfm", params={"segment": segment}).text
    )
    assert mine == top(members & north) and mine and not mine & south
    bad = admin.get("/analytical/rfm", params={"segment": "whales"})
    assert bad.status_code == 422 and "segment" in bad.text


def test_clv_page_shows_the_snapshot(an_crm, people, browser):
    simulate_orders(an_crm, customers=300, seed=8)
    north, south = _split_owners(an_crm, people)
    with an_crm.db.write() as session:
        run = clv_snapshot.refresh_step(an_crm, session, AS_OF)
        run_id, summary = run.id, run.summary
    with an_crm.db.session() as session:
        scores = {
            s.customer_id: s.clv_minor
            for s in session.scalars(select(ClvScore).where(ClvScore.run_id == run_id))
        }
    page = _admin(browser).get("/analytical/clv").text
    assert "Not computed yet" not in page and "Fader" in page
    bg = summary["bgnbd"]
    assert f"r = {round(bg['r'], 3)}, α = {round(bg['alpha'], 3)}" in page
    total = sum(scores.values())
    assert f"${total / 100:,.2f}" in page  # total CLV, USD
    holdout = re.search(r'id="clv-holdout-total">.*?</tr>', page, re.S).group(0)
    assert f"{summary['holdout']['total']['actual']:,}" in holdout
    charts = re.findall(r'data-chart-type="(\w+)" data-chart="([^"]+)"', page)
    assert len(charts) == 2
    assert '"type": "line"' in html.unescape(charts[0][1])
    top = sorted(scores, key=lambda c: (-scores[c], c))
    assert _listed(page) == set(top[:50])
    mine = _listed(browser("an@example.com").get("/analytical/clv").text)
    visible = sorted(north, key=lambda c: (-scores[c], c))[:50]
    assert mine == set(visible) and not mine & south


def test_clv_page_and_panel_show_a_fit_error(an_crm, people, browser):
    simulate_orders(an_crm, customers=10, seed=1)
    with an_crm.db.write() as session:
        clv_snapshot.refresh_step(an_crm, session, AS_OF)
    admin = _admin(browser)
    page = admin.get("/analytical/clv")
    assert page.status_code == 200 and "too little data to fit BG/NBD" in page.text
    with an_crm.db.session() as session:
        customer = session.scalars(select(Customer.id)).first()
    assert "too little data" in admin.get(f"/ui/slots/analytical.clv/{customer}").text


def test_lifetime_value_panel(an_crm, people, browser):
    simulate_orders(an_crm, customers=200, seed=9)
    admin = _admin(browser)
    with an_crm.db.session() as session:
        customer = session.scalars(select(Customer.id)).first()
    assert "Not computed yet" in admin.get(f"/ui/slots/analytical.clv/{customer}").text
    with an_crm.db.write() as session:
        run_id = clv_snapshot.refresh_step(an_crm, session, AS_OF).id
    with an_crm.db.session() as session:
        score = session.scalars(
            select(ClvScore).where(ClvScore.run_id == run_id, ClvScore.customer_id == customer)
        ).one()
    panel = admin.get(f"/ui/slots/analytical.clv/{customer}").text
    assert f"${score.clv_minor / 100:,.2f}" in panel
    assert f"{score.probability_alive:.1%}".replace("%", "") in panel.replace("\xa0", "")
    assert browser("chi@example.com").get(f"/ui/slots/analytical.clv/{customer}").status_code in (
        403,
        404,
    )
