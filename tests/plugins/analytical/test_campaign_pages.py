"""The segment builder and campaign pages: sign-in, permissions, record rules, forms (CSRF,
422 naming the field, POST-redirect-GET), and pages with and without data."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, insert, select

from core.customers.models import CustomerIdentity
from plugins.analytical.models import Campaign, CampaignMember, Segment
from plugins.operational import mailings
from tests.plugins.analytical.helpers import add_customer, add_people
from tests.web.conftest import Browser

PAGES = ("/analytical/segments", "/analytical/segments/new", "/analytical/campaigns")


@pytest.fixture
def people(an_crm):
    """Users: a north-team manager (team scope), a marketer, salespeople, an analyst."""
    return add_people(
        an_crm,
        {"north": "North", "south": "South"},
        [
            ("boss@example.com", "north", ["manager"]),
            ("southie@example.com", "south", ["sales"]),
            ("mai@example.com", None, ["marketing"]),
            ("sam@example.com", "north", ["sales"]),
            ("ana@example.com", None, ["analyst"]),
        ],
        title=False,
    )


def _customers(crm, owners: list[int | None], country: str = "VN") -> list[int]:
    now = dt.datetime.now(dt.UTC)
    ids = []
    with crm.db.write() as session:
        for i, owner in enumerate(owners):
            cid = add_customer(
                session,
                f"Khách {country}{len(ids)}-{i}",
                owner,
                search_key=f"k{country}{i}",
                country=country,
            )
            session.execute(
                insert(CustomerIdentity).values(
                    customer_id=cid, channel="email", value=f"k{cid}@example.com", created_at=now
                )
            )
            ids.append(cid)
    return ids


def _follow(client: Browser, response) -> str:
    assert response.status_code == 303, response.text
    return client.get(response.headers["location"]).text


def test_anonymous_visitors_are_sent_to_sign_in(an_crm, browser):
    anonymous = browser()
    for url in (*PAGES, "/analytical/campaigns/1", "/analytical/segments/1"):
        page = anonymous.get(url, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next="), url


def test_users_without_the_permission_are_refused(an_crm, browser, people):
    seller = browser("southie@example.com")
    for url in (*PAGES, "/analytical/segments/preview?countries=VN"):
        assert seller.get(url).status_code == 403, url
    assert seller.post("/analytical/segments", {"name": "x"}).status_code == 403
    assert seller.post("/analytical/campaigns", {"name": "x", "segment_id": "1"}).status_code == 403
    analyst_like = browser("boss@example.com")  # a manager reads but marketing creates
    assert analyst_like.get("/analytical/campaigns").status_code == 200
    with an_crm.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Segment)) == 0


def test_pages_render_without_any_data(an_crm, browser):
    admin = browser("admin@example.com", "Admin-pass-123")
    segments_page = admin.get("/analytical/segments")
    assert segments_page.status_code == 200 and "No saved segment yet." in segments_page.text
    builder = admin.get("/analytical/segments/new")
    assert builder.status_code == 200 and 'name="rfm_segments"' in builder.text
    assert (
        "Choose criteria" in builder.text
        and 'hx-get="/analytical/segments/preview"' in builder.text
    )
    campaigns_page = admin.get("/analytical/campaigns")
    assert campaigns_page.status_code == 200 and "No campaign yet." in campaigns_page.text
    assert "Save a segment first" in campaigns_page.text
    assert admin.get("/analytical/campaigns/99").status_code == 404
    assert admin.get("/analytical/segments/99").status_code == 404
    for text in (segments_page.text, builder.text):
        assert "How is this computed?" in text
    empty = admin.get("/analytical/segments/preview", params={"countries": "VN"})
    assert empty.status_code == 200 and 'data-count="0"' in empty.text


def test_the_builder_previews_saves_and_updates(an_crm, browser):
    vn = _customers(an_crm, [None] * 25)
    _customers(an_crm, [None] * 4, country="US")
    admin = browser("admin@example.com", "Admin-pass-123")
    preview = admin.get("/analytical/segments/new", params={"countries": "vn, fr"})
    assert 'data-count="25"' in preview.text
    listed = [int(c) for c in re.findall(r'data-customer="(\d+)"', preview.text)]
    assert listed == vn[:20]
    fragment = admin.get("/analytical/segments/preview", params={"countries": "US"})
    assert 'data-count="4"' in fragment.text and "<html" not in fragment.text
    bad = admin.get("/analytical/segments/preview", params={"countries": "USA"})
    assert bad.status_code == 422 and "definition.countries" in bad.text
    refused = admin.post("/analytical/segments", {"name": "Rich", "clv_min": "lots"})
    assert refused.status_code == 422 and "definition.clv_min" in refused.text
    assert 'value="lots"' in refused.text and 'value="Rich"' in refused.text
    with an_crm.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Segment)) == 0
    saved = admin.post(
        "/analytical/segments",
        {"name": "Vietnam", "countries": "VN", "clv_min": "1,500", "tiers": ["A", "B"]},
    )
    page = _follow(admin, saved)
    assert "Saved Vietnam." in page and 'value="1500"' in page
    with an_crm.db.session() as session:
        segment = session.scalars(select(Segment)).one()
        assert segment.definition == {"countries": ["VN"], "clv_min": 1500, "tiers": ["A", "B"]}
    url = f"/analytical/segments/{segment.id}"
    changed = admin.post(url, {"name": "Vietnam", "countries": "VN", "version": "1"})
    assert "Saved Vietnam." in _follow(admin, changed)
    stale = admin.post(url, {"name": "Old", "countries": "US", "version": "1"})
    assert "Someone else changed it" in _follow(admin, stale)
    with an_crm.db.session() as session:
        segment = session.get(Segment, segment.id)
        assert segment.definition == {"countries": ["VN"]} and segment.version == 2
    assert 'data-count="25"' in admin.get(url).text
    assert "Vietnam" in admin.get("/analytical/segments").text
    no_csrf = admin.client.post(
        url, data={"name": "x", "version": "2"}, headers={"Origin": "http://testserver"}
    )
    assert no_csrf.status_code == 403
    deleted = admin.post(f"{url}/delete", {"version": "2"})
    assert "Segment deleted." in _follow(admin, deleted)


def test_the_preview_follows_record_rules(an_crm, browser, people):
    boss, sam, southie = (
        people["boss@example.com"],
        people["sam@example.com"],
        people["southie@example.com"],
    )
    north = _customers(an_crm, [boss, sam, None])
    south = _customers(an_crm, [southie, southie])
    manager = browser("boss@example.com")  # team scope: the north team's and unowned customers
    page = manager.get("/analytical/segments/new", params={"countries": "VN"})
    assert 'data-count="3"' in page.text
    shown = {int(c) for c in re.findall(r'data-customer="(\d+)"', page.text)}
    assert shown == set(north) and not shown & set(south)
    everyone = browser("mai@example.com").get(
        "/analytical/segments/preview", params={"countries": "VN"}
    )
    assert 'data-count="5"' in everyone.text


def test_the_campaign_pages_create_freeze_hand_off_and_show_results(an_crm, browser, people):
    ids = _customers(an_crm, [None] * 40)
    with an_crm.db.write() as session:
        mailings.create_template(session, "promo", "Hello", "Hi {{ display_name }}")
    mai = browser("mai@example.com")
    _follow(mai, mai.post("/analytical/segments", {"name": "All VN", "countries": "VN"}))
    with an_crm.db.session() as session:
        segment_id = session.scalars(select(Segment.id)).one()
    listing = mai.get("/analytical/campaigns").text
    assert 'name="control_percent"' in listing and 'value="10"' in listing  # the setting
    bad = mai.post(
        "/analytical/campaigns",
        {"name": "Spring", "segment_id": str(segment_id), "control_percent": "200"},
    )
    assert bad.status_code == 422 and "control_percent" in bad.text
    made = mai.post(
        "/analytical/campaigns",
        {
            "name": "Spring",
            "segment_id": str(segment_id),
            "control_percent": "25",
            "response_days": "14",
        },
    )
    page = _follow(mai, made)
    assert "Campaign created." in page and 'data-status="draft"' in page
    assert "No results before the list is frozen." in page
    with an_crm.db.session() as session:
        campaign = session.scalars(select(Campaign)).one()
    url = f"/analytical/campaigns/{campaign.id}"
    page = _follow(mai, mai.post(f"{url}/freeze", {"version": str(campaign.version)}))
    with an_crm.db.session() as session:
        campaign = session.get(Campaign, campaign.id)
        controls = session.scalar(
            select(func.count()).where(
                CampaignMember.campaign_id == campaign.id, CampaignMember.grp == "control"
            )
        )
    assert campaign.targets + campaign.controls == len(ids) and controls == campaign.controls
    assert f"{campaign.targets} targets" in page and 'data-status="frozen"' in page
    assert 'data-chart="' in page and 'data-group="control"' in page
    again = _follow(mai, mai.post(f"{url}/freeze", {"version": str(campaign.version)}))
    assert "frozen already" in again
    templates = re.findall(r'<option value="(\d+)">promo</option>', page)
    sent = _follow(
        mai,
        mai.post(f"{url}/send", {"template_id": templates[0], "version": str(campaign.version)}),
    )
    assert 'data-status="sent"' in sent and "Draft mailing" in sent
    assert "How is this computed?" in sent and "Newcombe" in sent
    with an_crm.db.session() as session:
        assert session.get(Campaign, campaign.id).mailing_id is not None
    analyst = browser("ana@example.com")  # reads, cannot freeze or send
    assert analyst.get(url).status_code == 200
    assert analyst.post(f"{url}/freeze", {"version": "3"}).status_code == 403
    assert (
        analyst.post(f"{url}/send", {"template_id": templates[0], "version": "3"}).status_code
        == 403
    )
