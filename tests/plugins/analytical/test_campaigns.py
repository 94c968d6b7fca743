"""Campaigns: random and stable control groups, frozen lists, Newcombe's interval, results from
orders, the hand-off to an operational mailing (targets only), the command line and the API."""

from __future__ import annotations

import datetime as dt
import hmac
import json
import math

import pytest
from sqlalchemy import func, insert, select, update

from core.customers.models import Customer, CustomerIdentity
from plugins.analytical import campaigns, segments
from plugins.analytical.models import Campaign, CampaignMember
from plugins.operational import mailings
from plugins.operational.models import MailingRecipient, Order

ENV = {"CRM_LOAD_PLUGINS": "operational,analytical"}
FROZEN = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def _customers(crm, count: int, country: str = "VN", emails: bool = False) -> list[int]:
    """``count`` customers inserted in one statement (ids returned in order)."""
    now = dt.datetime.now(dt.UTC)
    with crm.db.write() as session:
        first = session.scalar(select(func.coalesce(func.max(Customer.id), 0)))
        session.execute(
            insert(Customer),
            [
                {
                    "kind": "person",
                    "display_name": f"C{first + i}",
                    "search_key": f"c{first + i}",
                    "country": country,
                    "archived": False,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
                for i in range(count)
            ],
        )
        ids = list(
            session.scalars(select(Customer.id).where(Customer.id > first).order_by(Customer.id))
        )
        if emails:
            session.execute(
                insert(CustomerIdentity),
                [
                    {
                        "customer_id": c,
                        "channel": "email",
                        "value": f"c{c}@example.com",
                        "created_at": now,
                    }
                    for c in ids
                    if c % 3  # every third customer has no e-mail address
                ],
            )
    return ids


def _campaign(crm, definition: dict, percent: int = 10, name: str = "All VN") -> int:
    with crm.db.write() as session:
        segment = segments.find_segment(session, name) or segments.create_segment(
            session, name, definition
        )
        return campaigns.create_campaign(session, crm, f"Campaign {name}", segment.id, percent).id


def _freeze(crm, campaign_id: int) -> Campaign:
    with crm.db.write() as session:
        campaign = session.get(Campaign, campaign_id)
        campaigns.freeze(session, crm, campaign)
        session.expunge(campaign)
        return campaign


def _groups(crm, campaign_id: int) -> dict[int, str]:
    with crm.db.session() as session:
        return dict(
            session.execute(
                select(CampaignMember.customer_id, CampaignMember.grp).where(
                    CampaignMember.campaign_id == campaign_id
                )
            ).all()
        )


def _reference_control(seed: str, customer_id: int, percent: int) -> bool:
    """The documented rule, written with floats and hashlib directly."""
    digest = hmac.digest(seed.encode(), str(customer_id).encode(), "sha256")
    return int(digest[:8].hex(), 16) / 2**64 < percent / 100


# --- control groups -------------------------------------------------------------------------


def test_control_groups_are_random_stable_and_follow_the_documented_rule(an_crm):
    ids = _customers(an_crm, 5000)
    first = _campaign(an_crm, {"countries": ["VN"]}, percent=10)
    second = _campaign(an_crm, {"countries": ["VN"]}, percent=10)
    one, two = _freeze(an_crm, first), _freeze(an_crm, second)
    assert one.seed != two.seed and len(one.seed) == 32
    groups = _groups(an_crm, first)
    assert set(groups) == set(ids)
    control = {c for c, g in groups.items() if g == "control"}
    assert one.controls == len(control) and one.targets == len(ids) - len(control)
    # binomial(5000, 0.1): mean 500, sd 21.2; four sd either way
    assert abs(len(control) - 500) < 4 * math.sqrt(5000 * 0.1 * 0.9)
    # not the first N, nor tied to the id order: each half and each parity holds about 10 %
    for part in (ids[:2500], ids[2500:], ids[::2], ids[1::2]):
        share = len(control & set(part)) / len(part)
        assert abs(share - 0.1) < 4 * math.sqrt(0.1 * 0.9 / len(part)), share
    assert control != set(ids[: len(control)])
    # the documented rule, recomputed independently
    assert control == {c for c in ids if _reference_control(one.seed, c, 10)}
    # stable: the same seed gives the same groups; another seed other groups
    assert campaigns.assign(one.seed, ids, 10) == groups
    other = {c for c, g in _groups(an_crm, second).items() if g == "control"}
    assert other != control
    overlap = len(other & control) / len(control)
    assert overlap < 0.25  # independent draws overlap by about 10 %


@pytest.mark.parametrize("percent", [0, 100])
def test_zero_and_full_control_shares(an_crm, percent):
    ids = _customers(an_crm, 50)
    campaign = _freeze(an_crm, _campaign(an_crm, {}, percent=percent))
    assert campaign.controls == (len(ids) if percent == 100 else 0)


def test_a_frozen_list_never_changes(an_crm):
    ids = _customers(an_crm, 30)
    campaign_id = _campaign(an_crm, {"countries": ["VN"]}, percent=20)
    with an_crm.db.session() as session:
        assert campaigns.results(session, an_crm, session.get(Campaign, campaign_id)) is None
    _freeze(an_crm, campaign_id)
    before = _groups(an_crm, campaign_id)
    assert set(before) == set(ids)
    _customers(an_crm, 10)  # new matching customers, and the segment changes
    with an_crm.db.write() as session:
        segment = segments.find_segment(session, "All VN")
        segments.update_segment(session, segment, {"definition": {"countries": ["US"]}}, 1)
    with an_crm.db.write() as session, pytest.raises(segments.Conflict):
        campaigns.freeze(session, an_crm, session.get(Campaign, campaign_id))
    assert _groups(an_crm, campaign_id) == before
    with an_crm.db.session() as session:
        assert session.get(Campaign, campaign_id).status == "frozen"


# --- uplift and its interval ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "expected"),
    [  # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ],
)
def test_newcombe_interval_matches_the_published_examples(counts, expected):
    low, high = campaigns.newcombe(*counts)
    assert low == pytest.approx(expected[0], abs=6e-5)
    assert high == pytest.approx(expected[1], abs=6e-5)


def test_wilson_interval_and_degenerate_groups():
    low, high = campaigns.wilson(81, 263)  # Newcombe (1998) Table I
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert campaigns.newcombe(3, 10, 0, 0) is None
    assert campaigns.newcombe(0, 0, 1, 2) is None


def _order(session, customer: int, placed: dt.datetime, total: int, **extra) -> None:
    values = {"status": "delivered", "currency": "VND", **extra}
    session.execute(
        insert(Order).values(
            ref=f"R{customer}-{placed.isoformat()}-{total}",
            customer_id=customer,
            placed_at=placed,
            total_minor=total,
            created_at=dt.datetime.now(dt.UTC),
            version=1,
            **values,
        )
    )


def test_results_count_responses_in_the_window_against_control(an_crm):
    _customers(an_crm, 40)
    campaign_id = _campaign(an_crm, {"countries": ["VN"]}, percent=50)
    _freeze(an_crm, campaign_id)
    groups = _groups(an_crm, campaign_id)
    targets = sorted(c for c, g in groups.items() if g == "target")
    controls = sorted(c for c, g in groups.items() if g == "control")
    assert len(targets) >= 8 and len(controls) >= 8
    day = dt.timedelta(days=1)
    with an_crm.db.write() as session:  # the window is [1 May, 31 May)
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(frozen_at=FROZEN, response_days=30)
        )
        _order(session, targets[0], FROZEN, 100_000)  # first instant: counts
        _order(session, targets[0], FROZEN + 2 * day, 50_000)  # same customer again
        _order(session, targets[1], FROZEN + 30 * day - dt.timedelta(seconds=1), 30_001)
        _order(session, targets[2], FROZEN + 30 * day, 999_999)  # window over
        _order(session, targets[3], FROZEN - dt.timedelta(seconds=1), 999_999)  # before
        _order(session, targets[4], FROZEN + day, 999_999, status="cancelled")
        _order(session, targets[5], FROZEN + day, 7_000, currency="USD")  # responds, no VND
        _order(session, controls[0], FROZEN + 3 * day, 40_000)
        _order(session, controls[1], FROZEN + 3 * day, 999_999, status="returned")
    with an_crm.db.session() as session:
        result = campaigns.results(session, an_crm, session.get(Campaign, campaign_id))
    n1, n2 = len(targets), len(controls)
    assert (result.target.size, result.target.responders) == (n1, 3)
    assert (result.control.size, result.control.responders) == (n2, 1)
    assert result.target.revenue_minor == 180_001 and result.control.revenue_minor == 40_000
    per_target = int(180_001 / n1 + 0.5)
    per_control = int(40_000 / n2 + 0.5)
    assert result.target.revenue_per_customer_minor == per_target
    assert result.control.revenue_per_customer_minor == per_control
    assert result.uplift == pytest.approx(3 / n1 - 1 / n2)
    assert result.incremental_revenue_minor == (per_target - per_control) * n1
    assert isinstance(result.incremental_revenue_minor, int)
    low, high = result.ci_low, result.ci_high
    assert low < result.uplift < high
    assert (low, high) == pytest.approx(campaigns.newcombe(3, n1, 1, n2))
    assert result.complete and result.currency == "VND"
    assert result.window_end - result.window_start == dt.timedelta(days=30)


# --- hand-off to a mailing ------------------------------------------------------------------


def _template(crm) -> int:
    with crm.db.write() as session:
        return mailings.create_template(
            session, "promo", "Hello {{ given_name }}", "Hi {{ display_name }}"
        ).id


def test_the_mailing_reaches_the_targets_with_an_email_never_the_control(an_crm):
    ids = _customers(an_crm, 60, emails=True)
    template_id = _template(an_crm)
    campaign_id = _campaign(an_crm, {"countries": ["VN"]}, percent=30)
    with an_crm.db.write() as session, pytest.raises(segments.Conflict):  # not frozen yet
        campaigns.send_to_mailing(an_crm, session, session.get(Campaign, campaign_id), template_id)
    with an_crm.db.session() as session:
        assert campaigns.mailing_segment(an_crm, session, f"campaign:{campaign_id}") is None
    _freeze(an_crm, campaign_id)
    groups = _groups(an_crm, campaign_id)
    with an_crm.db.write() as session:
        campaign = session.get(Campaign, campaign_id)
        with pytest.raises(segments.Invalid) as caught:
            campaigns.send_to_mailing(an_crm, session, campaign, "no-such-template")
        assert "template_id" in caught.value.errors and campaign.status == "frozen"
        mailing = campaigns.send_to_mailing(an_crm, session, campaign, "promo")
        assert (
            mailing.audience == {"segment": f"campaign:{campaign_id}"} and mailing.status == "draft"
        )
        assert campaign.mailing_id == mailing.id and campaign.status == "sent"
        counts = mailings.schedule(session, an_crm, mailing, mailing.version)
        mailing_id = mailing.id
    with an_crm.db.session() as session:
        recipients = set(
            session.scalars(
                select(MailingRecipient.customer_id).where(
                    MailingRecipient.mailing_id == mailing_id
                )
            )
        )
    targets = {c for c, g in groups.items() if g == "target"}
    with_email = {c for c in ids if c % 3}
    assert recipients == targets & with_email
    assert not recipients & {c for c, g in groups.items() if g == "control"}
    assert counts["queued"] == len(recipients) and counts["no_email"] == len(targets - with_email)
    with an_crm.db.write() as session, pytest.raises(segments.Conflict):  # handed over once only
        campaigns.send_to_mailing(an_crm, session, session.get(Campaign, campaign_id), template_id)


def test_saved_segments_are_mailing_audiences(an_crm):
    vn = _customers(an_crm, 5, country="VN", emails=True)
    _customers(an_crm, 5, country="US", emails=True)
    with an_crm.db.write() as session:
        segments.create_segment(session, "Vietnam", {"countries": ["VN"]})
    with an_crm.db.session() as session:
        assert sorted(campaigns.mailing_segment(an_crm, session, "segment:Vietnam")) == vn
        assert campaigns.mailing_segment(an_crm, session, "segment:Nowhere") is None
        assert campaigns.mailing_segment(an_crm, session, "campaign:999") is None
        assert campaigns.mailing_segment(an_crm, session, "champions") is None
    with an_crm.db.write() as session:  # through the operational module and the hook
        mailing = mailings.create_mailing(
            session,
            {
                "name": "VN",
                "template_id": _template(an_crm),
                "audience": {"segment": "segment:Vietnam"},
            },
            None,
        )
        mailings.schedule(session, an_crm, mailing, mailing.version)
        recipients = set(
            session.scalars(
                select(MailingRecipient.customer_id).where(
                    MailingRecipient.mailing_id == mailing.id
                )
            )
        )
    assert recipients == {c for c in vn if c % 3}


# --- command line ---------------------------------------------------------------------------


def test_the_command_line_happy_path_and_errors(an_crm, cli):
    _customers(an_crm, 20)
    _template(an_crm)
    created = cli(
        "analytics",
        "segments",
        "create",
        "--name",
        "VN",
        "--definition",
        '{"countries": ["vn"]}',
        **ENV,
    )
    assert created.exit_code == 0, created.output
    for bad, words in (
        ("{nope", "--definition"),
        ('{"colour": 1}', "definition.colour"),
        ('{"tiers": ["Z"]}', "definition.tiers"),
    ):
        result = cli("analytics", "segments", "create", "--name", "Bad", "--definition", bad, **ENV)
        assert result.exit_code != 0 and words in result.output, result.output
    taken = cli("analytics", "segments", "create", "--name", "VN", "--definition", "{}", **ENV)
    assert taken.exit_code != 0 and "already exists" in taken.output
    listed = json.loads(cli("analytics", "segments", "list", "--format", "json", **ENV).output)
    assert [s["name"] for s in listed] == ["VN"]
    shown = json.loads(cli("analytics", "segments", "show", "VN", "--format", "json", **ENV).output)
    assert shown["count"] == 20
    preview = cli(
        "analytics",
        "segments",
        "preview",
        "--definition",
        '{"countries": ["US"]}',
        "--format",
        "json",
        **ENV,
    )
    assert json.loads(preview.output)["count"] == 0
    missing = cli("analytics", "campaigns", "create", "--name", "X", "--segment", "Nope", **ENV)
    assert missing.exit_code != 0 and "--segment" in missing.output
    bad_percent = cli(
        "analytics",
        "campaigns",
        "create",
        "--name",
        "X",
        "--segment",
        "VN",
        "--control-percent",
        "101",
        **ENV,
    )
    assert bad_percent.exit_code != 0 and "--control-percent" in bad_percent.output
    made = cli(
        "analytics",
        "campaigns",
        "create",
        "--name",
        "Spring",
        "--segment",
        "VN",
        "--control-percent",
        "25",
        **ENV,
    )
    assert made.exit_code == 0, made.output
    campaign_id = json.loads(
        cli("analytics", "campaigns", "list", "--format", "json", **ENV).output
    )[0]["id"]
    early = cli("analytics", "campaigns", "results", str(campaign_id), **ENV)
    assert early.exit_code != 0 and "not frozen" in early.output
    assert cli("analytics", "campaigns", "freeze", str(campaign_id), **ENV).exit_code == 0
    again = cli("analytics", "campaigns", "freeze", str(campaign_id), **ENV)
    assert again.exit_code != 0 and "frozen already" in again.output
    wrong = cli("analytics", "campaigns", "send", str(campaign_id), "--template", "nope", **ENV)
    assert wrong.exit_code != 0 and "--template" in wrong.output
    with an_crm.db.session() as session:
        assert session.get(Campaign, campaign_id).status == "frozen"
    sent = cli("analytics", "campaigns", "send", str(campaign_id), "--template", "promo", **ENV)
    assert sent.exit_code == 0, sent.output
    results = json.loads(
        cli("analytics", "campaigns", "results", str(campaign_id), "--format", "json", **ENV).output
    )
    with an_crm.db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign.status == "sent" and campaign.mailing_id is not None
        assert (
            results["target"]["size"] == campaign.targets
            and results["control"]["size"] == campaign.controls
        )
    assert results["target"]["size"] + results["control"]["size"] == 20
    table = cli("analytics", "campaigns", "results", str(campaign_id), **ENV)
    assert table.exit_code == 0 and "uplift" in table.output
    assert cli("analytics", "segments", "delete", "VN", **ENV).exit_code == 0
    assert cli("analytics", "segments", "delete", "VN", **ENV).exit_code != 0
    with an_crm.db.session() as session:  # the frozen list stays
        assert session.scalar(select(func.count()).select_from(CampaignMember)) == 20


# --- REST API -------------------------------------------------------------------------------


def _token_client(crm, email: str):
    """A TestClient sending an API token of ``email``."""
    from fastapi.testclient import TestClient

    from core import auth, users
    from core.web.app import create_app

    with crm.db.write() as session:
        secret = auth.create_token(session, users.get_user(session, email), "test").secret
    client = TestClient(create_app(crm), base_url="http://testserver")
    client.headers["Authorization"] = f"Bearer {secret}"
    return client


@pytest.fixture
def api(an_crm):
    """The API as the administrator (token)."""
    return _token_client(an_crm, "admin@example.com")


def test_the_api_segments_crud_preview_and_errors(an_crm, api):
    _customers(an_crm, 12)
    made = api.post(
        "/api/analytical/segments", json={"name": "VN", "definition": {"countries": ["VN"]}}
    )
    assert made.status_code == 201, made.text
    segment = made.json()
    bad = api.post(
        "/api/analytical/segments", json={"name": "B", "definition": {"tiers": ["Q"], "zz": 1}}
    )
    assert bad.status_code == 422
    fields = {tuple(e["loc"]) for e in bad.json()["detail"]}
    assert fields == {("body", "definition", "tiers"), ("body", "definition", "zz")}
    assert (
        api.post("/api/analytical/segments", json={"name": "VN", "definition": {}}).status_code
        == 409
    )
    preview = api.post(
        "/api/analytical/segments/preview", json={"definition": {"countries": ["VN"]}}
    )
    assert preview.json()["count"] == 12 and len(preview.json()["customers"]) == 12
    assert api.get(f"/api/analytical/segments/{segment['id']}/preview").json()["count"] == 12
    changed = api.patch(
        f"/api/analytical/segments/{segment['id']}",
        json={"version": 1, "definition": {"countries": ["US"]}},
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    stale = api.patch(
        f"/api/analytical/segments/{segment['id']}", json={"version": 1, "name": "Old"}
    )
    assert stale.status_code == 409 and stale.json()["current"]["name"] == "VN"
    assert (
        api.delete(f"/api/analytical/segments/{segment['id']}", params={"version": 1}).status_code
        == 409
    )
    assert (
        api.delete(f"/api/analytical/segments/{segment['id']}", params={"version": 2}).status_code
        == 204
    )
    assert api.get("/api/analytical/segments").json() == []


def test_the_api_campaign_life_cycle(an_crm, api):
    _customers(an_crm, 25, emails=True)
    template_id = _template(an_crm)
    segment = api.post(
        "/api/analytical/segments", json={"name": "VN", "definition": {"countries": ["VN"]}}
    ).json()
    bad = api.post("/api/analytical/campaigns", json={"name": "X", "segment_id": 999})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "segment_id"]
    made = api.post(
        "/api/analytical/campaigns", json={"name": "Spring", "segment_id": segment["id"]}
    )
    assert made.status_code == 201
    campaign = made.json()
    assert campaign["control_percent"] == 10 and campaign["response_days"] == 30  # settings
    assert "seed" not in campaign
    cid = campaign["id"]
    assert api.get(f"/api/analytical/campaigns/{cid}/results").status_code == 409
    assert (
        api.post(
            f"/api/analytical/campaigns/{cid}/send", json={"version": 1, "template_id": template_id}
        ).status_code
        == 409
    )
    frozen = api.post(f"/api/analytical/campaigns/{cid}/freeze", json={"version": 1})
    assert frozen.status_code == 200 and frozen.json()["targets"] + frozen.json()["controls"] == 25
    version = frozen.json()["version"]
    assert (
        api.post(f"/api/analytical/campaigns/{cid}/freeze", json={"version": version}).status_code
        == 409
    )
    stale = api.post(f"/api/analytical/campaigns/{cid}/freeze", json={"version": 1})
    assert stale.status_code == 409 and stale.json()["current"]["status"] == "frozen"
    no_template = api.post(
        f"/api/analytical/campaigns/{cid}/send", json={"version": version, "template_id": 999}
    )
    assert no_template.status_code == 422
    sent = api.post(
        f"/api/analytical/campaigns/{cid}/send",
        json={"version": version, "template_id": template_id},
    )
    assert sent.status_code == 200 and sent.json()["status"] == "sent"
    mailing = api.get(f"/api/operational/mailings/{sent.json()['mailing_id']}").json()
    assert mailing["audience"] == {"segment": f"campaign:{cid}"}
    results = api.get(f"/api/analytical/campaigns/{cid}/results").json()
    assert (
        results["target"]["size"] == frozen.json()["targets"]
        and results["target"]["responders"] == 0
    )
    assert [c["id"] for c in api.get("/api/analytical/campaigns").json()] == [cid]


def test_the_api_needs_the_permissions(an_crm):
    from fastapi.testclient import TestClient

    from core import users
    from core.web.app import create_app

    with an_crm.db.write() as session:
        users.create_user(session, "ana@example.com", "Ana", "Password-123!", ["analyst"])
    analyst = _token_client(an_crm, "ana@example.com")
    assert analyst.get("/api/analytical/segments").status_code == 200
    assert analyst.get("/api/analytical/campaigns").status_code == 200
    created = analyst.post("/api/analytical/segments", json={"name": "A", "definition": {}})
    assert created.status_code == 403
    campaign = analyst.post("/api/analytical/campaigns", json={"name": "A", "segment_id": 1})
    assert campaign.status_code == 403
    anonymous = TestClient(create_app(an_crm), base_url="http://testserver")
    assert anonymous.get("/api/analytical/campaigns").status_code == 401
