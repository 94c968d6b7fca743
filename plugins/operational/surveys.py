"""Satisfaction surveys: a one-time link to a 1-5 rating and a comment, and their results.

A survey is sent when a ticket is resolved (``plugins.operational.tickets.resolve``) and may be
sent after a sale (:func:`survey_for_order`). Its link carries a random token
(``secrets.token_urlsafe``); only the token's SHA-256 digest is stored, as for API tokens, so
the plain link exists only in the answer of the call that created it. A link works once and
until it expires (``DEFAULT_DAYS`` after it was sent).

Results: the latest answer on a ticket (:func:`ticket_results`), a customer's average rating
(:func:`customer_satisfaction`) and the average per month for reports
(:func:`satisfaction_by_month`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.db import utcnow
from plugins.operational.models import Order, Survey

DEFAULT_DAYS = 14
MIN_RATING, MAX_RATING = 1, 5
MAX_COMMENT = 5000
PATH = "/operational/survey/"


class SurveyError(ValueError):
    """An answer the survey refuses; ``field`` names the bad value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class SurveyNotFound(LookupError):
    """No survey has this token (mistyped or made-up link)."""


class SurveyClosed(Exception):
    """The survey exists but takes no answer any more: answered already, or expired."""

    def __init__(self, survey: Survey, reason: str) -> None:
        super().__init__(f"survey {reason}")
        self.survey = survey
        #: ``answered`` or ``expired``
        self.reason = reason


@dataclass(frozen=True)
class NewSurvey:
    """A survey just created; ``token`` is the plain secret, shown once and never stored."""

    survey: Survey
    token: str

    @property
    def path(self) -> str:
        """The public page's path, token included."""
        return PATH + self.token

    def url(self, public_url: str) -> str:
        """The full link for the customer (``public_url`` is ``CRM_PUBLIC_URL``)."""
        return public_url.rstrip("/") + self.path


@dataclass(frozen=True)
class CustomerSatisfaction:
    """A customer's answered surveys: how many, and their average rating (``None``: none)."""

    customer_id: int
    answered: int
    average: float | None


@dataclass
class MonthlySatisfaction:
    """Answers received in one month (``YYYY-MM``): count, average, count per rating."""

    month: str
    answered: int = 0
    average: float = 0.0
    ratings: dict[int, int] = field(
        default_factory=lambda: dict.fromkeys(range(MIN_RATING, MAX_RATING + 1), 0)
    )


def digest(token: str) -> str:
    """The SHA-256 hex digest stored in place of ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    session: Session,
    customer_id: int,
    *,
    ticket_id: int | None = None,
    order_id: int | None = None,
    days: int = DEFAULT_DAYS,
    now: dt.datetime | None = None,
) -> NewSurvey:
    """Create a survey for a customer (about a ticket or an order) valid for ``days`` days."""
    if days < 1:
        raise SurveyError("days", "a survey must stay open at least one day")
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    survey = Survey(
        customer_id=customer_id,
        ticket_id=ticket_id,
        order_id=order_id,
        token_hash=digest(token),
        sent_at=now,
        expires_at=now + dt.timedelta(days=days),
    )
    session.add(survey)
    session.flush()
    return NewSurvey(survey, token)


def for_ticket(
    session: Session,
    ticket_id: int,
    customer_id: int,
    *,
    days: int = DEFAULT_DAYS,
    now: dt.datetime | None = None,
) -> NewSurvey:
    """A new survey about a ticket; earlier unanswered links of the ticket stop working.

    A ticket resolved, reopened and resolved again so has one live link: the latest.
    """
    now = now or utcnow()
    session.execute(
        update(Survey)
        .where(
            Survey.ticket_id == ticket_id,
            Survey.answered_at.is_(None),
            Survey.expires_at > now,
        )
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    return create(session, customer_id, ticket_id=ticket_id, days=days, now=now)


def survey_for_order(
    session: Session, order_id: int, *, days: int = DEFAULT_DAYS, now: dt.datetime | None = None
) -> NewSurvey:
    """A survey about an order (after a sale); ``LookupError`` when the order does not exist."""
    order = session.get(Order, order_id)
    if order is None:
        raise LookupError(f"no order {order_id}")
    return create(session, order.customer_id, order_id=order.id, days=days, now=now)


def find(session: Session, token: str, now: dt.datetime | None = None) -> Survey:
    """The open survey of ``token``; ``SurveyNotFound`` or ``SurveyClosed`` otherwise."""
    survey = session.scalar(select(Survey).where(Survey.token_hash == digest(token)))
    if survey is None:
        raise SurveyNotFound("no survey has this link")
    if survey.answered_at is not None:
        raise SurveyClosed(survey, "answered")
    if survey.expires_at <= (now or utcnow()):
        raise SurveyClosed(survey, "expired")
    return survey


def check_rating(value: object) -> int:
    """``value`` (a form string or a number) as a rating from 1 to 5; ``SurveyError`` else."""
    message = f"choose a rating from {MIN_RATING} to {MAX_RATING}"
    if isinstance(value, bool):
        raise SurveyError("rating", message)
    try:
        rating = int(str(value).strip())
    except ValueError:
        raise SurveyError("rating", message) from None
    if not MIN_RATING <= rating <= MAX_RATING:
        raise SurveyError("rating", message)
    return rating


def _clean_comment(comment: str | None) -> str | None:
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT:
        raise SurveyError("comment", f"the comment may have at most {MAX_COMMENT} characters")
    return text or None


def answer(
    session: Session,
    token: str,
    rating: object,
    comment: str | None = None,
    now: dt.datetime | None = None,
) -> Survey:
    """Record the answer of ``token``'s survey, once.

    The write is one conditional UPDATE, so of two simultaneous answers exactly one counts; the
    other gets ``SurveyClosed`` like any later one. Nothing is written on any error.
    """
    now = now or utcnow()
    survey = find(session, token, now)
    values = {"rating": check_rating(rating), "comment": _clean_comment(comment)}
    result = session.execute(
        update(Survey)
        .where(Survey.id == survey.id, Survey.answered_at.is_(None), Survey.expires_at > now)
        .values(**values, answered_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(survey)
    if result.rowcount != 1:
        raise SurveyClosed(survey, "answered" if survey.answered_at else "expired")
    return survey


def ticket_results(session: Session, ticket_ids: list[int]) -> dict[int, Survey]:
    """The latest answered survey of each of ``ticket_ids`` that has one."""
    if not ticket_ids:
        return {}
    rows = session.scalars(
        select(Survey)
        .where(Survey.ticket_id.in_(ticket_ids), Survey.answered_at.is_not(None))
        .order_by(Survey.answered_at, Survey.id)
    )
    return {survey.ticket_id: survey for survey in rows if survey.ticket_id is not None}


def customer_satisfaction(session: Session, customer_id: int) -> CustomerSatisfaction:
    """How many surveys the customer answered and their average rating (2 decimals)."""
    count, average = session.execute(
        select(func.count(Survey.rating), func.avg(Survey.rating)).where(
            Survey.customer_id == customer_id, Survey.answered_at.is_not(None)
        )
    ).one()
    return CustomerSatisfaction(
        customer_id, int(count), None if average is None else round(float(average), 2)
    )


def satisfaction_by_month(
    session: Session,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    timezone: str = "UTC",
) -> list[MonthlySatisfaction]:
    """Answers per calendar month in ``timezone`` (oldest first), answered in [since, until).

    Only two columns of the answered surveys are read and months are formed in Python, so the
    months follow the business's time zone the same way on SQLite and PostgreSQL.
    """
    query = select(Survey.answered_at, Survey.rating).where(Survey.answered_at.is_not(None))
    if since is not None:
        query = query.where(Survey.answered_at >= since)
    if until is not None:
        query = query.where(Survey.answered_at < until)
    zone = ZoneInfo(timezone)
    months: dict[str, MonthlySatisfaction] = {}
    for answered_at, rating in session.execute(query):
        month = answered_at.astimezone(zone).strftime("%Y-%m")
        row = months.setdefault(month, MonthlySatisfaction(month))
        row.answered += 1
        row.ratings[rating] = row.ratings.get(rating, 0) + 1
    for row in months.values():
        total = sum(rating * count for rating, count in row.ratings.items())
        row.average = round(total / row.answered, 2)
    return [months[month] for month in sorted(months)]


__all__ = [
    "DEFAULT_DAYS",
    "CustomerSatisfaction",
    "MonthlySatisfaction",
    "NewSurvey",
    "SurveyClosed",
    "SurveyError",
    "SurveyNotFound",
    "answer",
    "check_rating",
    "create",
    "customer_satisfaction",
    "digest",
    "find",
    "for_ticket",
    "satisfaction_by_month",
    "survey_for_order",
    "ticket_results",
]
