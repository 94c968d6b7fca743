"""Satisfaction surveys: one-time links (only a hash stored), the public page with its CSRF
round trip, expiry, rating validation, and the results on tickets, customers and by month."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from plugins.operational import surveys, tickets
from plugins.operational.models import Order, Survey
from tests.plugins.operational.test_tickets import (
    ORIGIN,
    T0,
    api,  # noqa: F401 (fixture)
    app,  # noqa: F401 (fixture)
    new_customer,
    new_ticket,
    run,
)


def resolve(crm, ticket_id: int, now: dt.datetime | None = None, days: int = 14) -> str:
    """Resolve the ticket through the service; return the survey's path (with its token)."""
    return run(crm, ticket_id, tickets.resolve, now=now, survey_days=days).path


def stored(crm) -> list[Survey]:
    """Every survey row."""
    with crm.db.session() as session:
        return list(session.scalars(select(Survey).order_by(Survey.id)))


class Visitor:
    """A customer's browser: no account, keeps cookies, reads the CSRF field off the form."""

    def __init__(self, web_app: Any) -> None:
        self.client = TestClient(web_app)

    def get(self, path: str):
        """Open the page as a browser does."""
        return self.client.get(path, headers={"Accept": "text/html"})

    def answer(self, path: str, rating: Any = None, comment: str = "", csrf: str | None = None):
        """Post the form with the token of the page (or ``csrf``), from our own origin."""
        if csrf is None:
            page = self.get(path)
            match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            csrf = match.group(1) if match else self.client.cookies.get("crm_csrf", "")
        form = {"csrf_token": csrf, "comment": comment}
        if rating is not None:
            form["rating"] = str(rating)
        return self.client.post(path, data=form, headers={**ORIGIN, "Accept": "text/html"})


@pytest.fixture
def visitor(app):  # noqa: F811
    """A signed-out browser."""
    return Visitor(app)


def test_only_the_hash_of_the_token_is_stored(ops_crm):
    path = resolve(ops_crm, new_ticket(ops_crm, new_customer(ops_crm)))
    token = path.rsplit("/", 1)[1]
    assert len(token) >= 43  # 32 random bytes
    (survey,) = stored(ops_crm)
    assert survey.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(v) for v in vars(survey).values()}
    assert survey.expires_at == survey.sent_at + dt.timedelta(days=14)


def test_the_survey_is_answered_once_through_its_link(ops_crm, app, visitor):  # noqa: F811
    ticket_id = new_ticket(ops_crm, new_customer(ops_crm), subject="Wi-Fi chập chờn")
    path = resolve(ops_crm, ticket_id)
    page = visitor.get(path)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert "Wi-Fi chập chờn" in html
    for value in range(1, 6):  # five radio buttons, each with its label
        assert f'<label for="rating-{value}">' in html
        assert re.search(rf'type="radio" id="rating-{value}" name="rating" value="{value}"', html)
    assert "<legend>" in html and '<textarea id="comment" name="comment"' in html
    cookie = visitor.client.cookies.get("crm_csrf")
    assert cookie and f'name="csrf_token" value="{cookie}"' in html  # double submit

    done = visitor.answer(path, 4, "  Nhân viên rất nhiệt tình  ")
    assert done.status_code == 200, done.text
    assert "Thank you" in done.text
    (survey,) = stored(ops_crm)
    assert (survey.rating, survey.comment) == (4, "Nhân viên rất nhiệt tình")
    assert survey.answered_at is not None

    again = visitor.answer(path, 1, "changed my mind", csrf=cookie)
    assert again.status_code == 410
    assert "already been answered" in again.text
    assert visitor.get(path).status_code == 410
    (survey,) = stored(ops_crm)
    assert (survey.rating, survey.comment) == (4, "Nhân viên rất nhiệt tình")


def test_the_form_needs_its_csrf_token(ops_crm, visitor):
    path = resolve(ops_crm, new_ticket(ops_crm, new_customer(ops_crm)))
    visitor.get(path)
    assert visitor.answer(path, 5, csrf="forged-" + "x" * 40).status_code == 403
    fresh = Visitor(visitor.client.app)  # no cookie at all
    assert fresh.answer(path, 5, csrf="").status_code == 403
    assert stored(ops_crm)[0].answered_at is None


def test_an_unknown_link_gets_404_and_writes_nothing(ops_crm, visitor):
    resolve(ops_crm, new_ticket(ops_crm, new_customer(ops_crm)))
    path = surveys.PATH + "made-up-token"
    page = visitor.get(path)
    assert page.status_code == 404 and "not valid" in page.text
    assert visitor.answer(path, 5, csrf=visitor.client.cookies.get("crm_csrf")).status_code == 404
    assert stored(ops_crm)[0].answered_at is None


def test_an_expired_link_gets_410_and_writes_nothing(ops_crm, visitor):
    ticket_id = new_ticket(ops_crm, new_customer(ops_crm))
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=15)
    path = resolve(ops_crm, ticket_id, now=past)  # open 14 days: closed yesterday
    page = visitor.get(path)
    assert page.status_code == 410 and "expired" in page.text
    assert visitor.answer(path, 5, csrf=visitor.client.cookies.get("crm_csrf")).status_code == 410
    assert stored(ops_crm)[0].answered_at is None
    with ops_crm.db.write() as session, pytest.raises(surveys.SurveyClosed) as closed:
        surveys.answer(session, path.rsplit("/", 1)[1], 5)
    assert closed.value.reason == "expired"


def test_the_survey_expires_after_n_days_on_a_controlled_clock(ops_crm):
    path = resolve(ops_crm, new_ticket(ops_crm, new_customer(ops_crm)), now=T0, days=3)
    token = path.rsplit("/", 1)[1]
    with ops_crm.db.session() as session:
        assert surveys.find(session, token, T0 + dt.timedelta(days=3) - dt.timedelta(seconds=1))
        with pytest.raises(surveys.SurveyClosed):
            surveys.find(session, token, T0 + dt.timedelta(days=3))


@pytest.mark.parametrize("rating", [None, 0, 6, "abc", "4.5", ""])
def test_the_rating_must_be_1_to_5(ops_crm, visitor, rating):
    path = resolve(ops_crm, new_ticket(ops_crm, new_customer(ops_crm)))
    refused = visitor.answer(path, rating, "Keep this comment")
    assert refused.status_code == 422
    assert "Choose a rating from 1 to 5." in refused.text
    assert "Keep this comment" in refused.text  # the form comes back with what was typed
    assert stored(ops_crm)[0].answered_at is None
    assert visitor.answer(path, 5).status_code == 200
    assert stored(ops_crm)[0].rating == 5


def test_a_too_long_comment_is_refused(ops_crm, visitor):
    path = resolve(ops_crm, new_ticket(ops_crm, new_customer(ops_crm)))
    refused = visitor.answer(path, 3, "x" * (surveys.MAX_COMMENT + 1))
    assert refused.status_code == 422 and "too long" in refused.text
    assert stored(ops_crm)[0].answered_at is None


def test_a_second_answer_through_the_service_is_refused(ops_crm):
    token = resolve(ops_crm, new_ticket(ops_crm, new_customer(ops_crm))).rsplit("/", 1)[1]
    with ops_crm.db.write() as session:
        surveys.answer(session, token, 2)
    with ops_crm.db.write() as session, pytest.raises(surveys.SurveyClosed) as closed:
        surveys.answer(session, token, 5)
    assert closed.value.reason == "answered"
    assert stored(ops_crm)[0].rating == 2
    for bad in (True, 3.5, None, "7"):
        with pytest.raises(surveys.SurveyError):
            surveys.check_rating(bad)


def test_resolving_again_replaces_the_unanswered_link(ops_crm, visitor):
    ticket_id = new_ticket(ops_crm, new_customer(ops_crm))
    first = resolve(ops_crm, ticket_id)
    run(ops_crm, ticket_id, tickets.change_status, "open")
    second = resolve(ops_crm, ticket_id)
    assert visitor.get(first).status_code == 410
    assert visitor.get(second).status_code == 200


def test_the_page_speaks_the_customers_language(ops_crm, visitor):
    customer = new_customer(ops_crm, "Trần Thị Bình", language="vi")
    path = resolve(ops_crm, new_ticket(ops_crm, customer))
    assert '<html lang="vi"' in visitor.get(path).text


def test_the_link_from_the_api_leads_to_results_on_ticket_and_customer(
    ops_crm,
    api,  # noqa: F811
    visitor,
):
    customer = new_customer(ops_crm, owner="an@example.com")
    dung = api("dung@example.com")
    ids = [
        dung.post(
            "/api/operational/tickets", json={"customer_id": customer, "subject": f"Case {n}"}
        ).json()["id"]
        for n in (1, 2, 3)
    ]
    average = dung.get(f"/api/operational/customers/{customer}/satisfaction").json()
    assert average == {"customer_id": customer, "answered": 0, "average": None}
    for ticket_id, rating in zip(ids, (5, 2), strict=False):
        link = dung.post(f"/api/operational/tickets/{ticket_id}/resolve").json()["survey_url"]
        path = link.removeprefix(ops_crm.settings.public_url)
        assert visitor.answer(path, rating, f"rated {rating}").status_code == 200
    first = dung.get(f"/api/operational/tickets/{ids[0]}").json()
    assert first["satisfaction"]["rating"] == 5
    assert first["satisfaction"]["comment"] == "rated 5"
    listed = {
        t["id"]: t["satisfaction"] for t in dung.get("/api/operational/tickets").json()["items"]
    }
    assert listed[ids[1]]["rating"] == 2 and listed[ids[2]] is None
    average = dung.get(f"/api/operational/customers/{customer}/satisfaction").json()
    assert average == {"customer_id": customer, "answered": 2, "average": 3.5}
    # Record rules: a sales user of another team sees neither the customer nor its average.
    assert (
        api("an@example.com")
        .get(f"/api/operational/customers/{customer}/satisfaction")
        .json()["answered"]
        == 2
    )
    hidden = api("chi@example.com").get(f"/api/operational/customers/{customer}/satisfaction")
    assert hidden.status_code == 404


def test_surveys_after_a_sale(ops_crm, visitor):
    customer = new_customer(ops_crm)
    with ops_crm.db.write() as session:
        order = Order(ref="SO-0001", customer_id=customer, placed_at=T0, currency="VND")
        session.add(order)
        session.flush()
        new = surveys.survey_for_order(session, order.id)
        with pytest.raises(LookupError):
            surveys.survey_for_order(session, order.id + 1000)
    page = visitor.get(new.path)
    assert page.status_code == 200 and "SO-0001" in page.text
    assert visitor.answer(new.path, 3).status_code == 200
    (survey,) = stored(ops_crm)
    assert (survey.order_id, survey.ticket_id, survey.customer_id, survey.rating) == (
        new.survey.order_id,
        None,
        customer,
        3,
    )


def answer_at(crm, customer: int, rating: int, at: dt.datetime) -> None:
    """A survey sent and answered at ``at``."""
    with crm.db.write() as session:
        new = surveys.create(session, customer, now=at - dt.timedelta(hours=1))
        surveys.answer(session, new.token, rating, now=at)


def test_satisfaction_per_month_for_reports(ops_crm, api):  # noqa: F811
    customer = new_customer(ops_crm)
    answer_at(ops_crm, customer, 5, dt.datetime(2026, 1, 10, tzinfo=dt.UTC))
    answer_at(ops_crm, customer, 2, dt.datetime(2026, 1, 31, 20, tzinfo=dt.UTC))  # Feb 1 in VN
    answer_at(ops_crm, customer, 4, dt.datetime(2026, 2, 15, tzinfo=dt.UTC))
    answer_at(ops_crm, customer, 1, dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
    with ops_crm.db.session() as session:
        utc = surveys.satisfaction_by_month(session)
        local = surveys.satisfaction_by_month(
            session,
            since=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            until=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
            timezone="Asia/Ho_Chi_Minh",
        )
    assert [(m.month, m.answered, m.average) for m in utc] == [
        ("2026-01", 2, 3.5),
        ("2026-02", 1, 4.0),
        ("2026-04", 1, 1.0),
    ]
    assert [(m.month, m.answered, m.average) for m in local] == [
        ("2026-01", 1, 5.0),
        ("2026-02", 2, 3.0),
    ]
    assert local[1].ratings == {1: 0, 2: 1, 3: 0, 4: 1, 5: 0}
    admin = api("admin@example.com")
    report = admin.get("/api/operational/satisfaction/monthly?since=2026-02-01T00:00:00%2B07:00")
    assert report.status_code == 200, report.text
    assert [(m["month"], m["answered"]) for m in report.json()] == [("2026-02", 2), ("2026-04", 1)]
    assert admin.get("/api/operational/satisfaction/monthly?since=2026-02-01").status_code == 422
    assert api("dung@example.com").get("/api/operational/satisfaction/monthly").status_code == 403
