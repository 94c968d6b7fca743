"""HTML pages for tickets, under ``/operational/``: the public satisfaction survey.

``/operational/survey/{token}`` needs no sign-in: the customers who answer have no account. The
random token in the link is the credential (256 bits, stored only as a SHA-256 hash); the page
shows no more than the subject of the customer's own request or the reference of their order,
works once and expires. Its form carries the CSRF double-submit token like every other form
(the router comes from ``new_router``). Answers are written with one conditional UPDATE, so a
second answer (even a simultaneous one) is refused and writes nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from core import i18n
from core.customers.models import Customer
from core.web.access import public
from core.web.ui.context import LANGUAGE_COOKIE, UIContext, anonymous_language, page
from plugins.operational import surveys
from plugins.operational.models import Order, Survey, Ticket
from plugins.operational.pages import new_router

router = new_router()
#: Why the survey page needs no sign-in (see the module docstring).
SURVEY = (
    "customers answering a survey have no account; the one-time token in the link is the credential"
)
#: The link is a secret: keep it out of caches, Referer headers and search engines.
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}
CLOSED_STATUS = {"unknown": 404, "answered": 410, "expired": 410}


def _language(request: Request, customer_language: str | None) -> None:
    """The visitor's chosen language, else the customer's, else the browser's preference."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen not in i18n.LANGUAGES and customer_language in i18n.LANGUAGES:
        chosen = customer_language
    i18n.set_language(chosen if chosen in i18n.LANGUAGES else anonymous_language(request))


def _render(request: Request, template: str, status_code: int = 200, **context: Any) -> Any:
    response = page(UIContext(request, None), template, status_code=status_code, **context)
    response.headers.update(PRIVATE_HEADERS)
    return response


def _closed(request: Request, reason: str) -> HTMLResponse:
    """The page for an unknown (404), answered or expired (410) link."""
    if reason == "unknown":
        _language(request, None)
    return _render(request, "operational/survey_closed.html", CLOSED_STATUS[reason], reason=reason)


def _about(session: Session, survey: Survey) -> dict[str, str | None]:
    """What the survey asks about: the ticket's subject or the order's reference."""
    ticket = session.get(Ticket, survey.ticket_id) if survey.ticket_id else None
    order = session.get(Order, survey.order_id) if survey.order_id else None
    return {
        "ticket_subject": ticket.subject if ticket else None,
        "order_ref": order.ref if order else None,
    }


def _form(
    request: Request,
    session: Session,
    survey: Survey,
    token: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    context.setdefault("error", None)
    context.setdefault("chosen", None)
    context.setdefault("comment", "")
    return _render(
        request,
        "operational/survey.html",
        status_code,
        action=surveys.PATH + token,
        max_comment=surveys.MAX_COMMENT,
        **_about(session, survey),
        **context,
    )


def _customer_language(session: Session, survey: Survey) -> str | None:
    customer = session.get(Customer, survey.customer_id)
    return customer.language if customer else None


@router.get("/survey/{token}", response_class=HTMLResponse, openapi_extra=public(SURVEY))
def survey_page(request: Request, token: str) -> HTMLResponse:
    """Public on purpose (customers have no account; the one-time token is the credential):
    the rating form, or why the link no longer works."""
    with request.app.state.crm.db.session() as session:
        try:
            survey = surveys.find(session, token)
        except surveys.SurveyNotFound:
            return _closed(request, "unknown")
        except surveys.SurveyClosed as exc:
            _language(request, _customer_language(session, exc.survey))
            return _closed(request, exc.reason)
        _language(request, _customer_language(session, survey))
        return _form(request, session, survey, token)


@router.post("/survey/{token}", response_class=HTMLResponse, openapi_extra=public(SURVEY))
def answer_survey(
    request: Request,
    token: str,
    rating: str | None = Form(None),
    comment: str | None = Form(None),
) -> HTMLResponse:
    """Public on purpose, like the form: records the rating and comment once.

    A missing or bad rating, or a too long comment, shows the form again (422) and writes
    nothing.
    """
    with request.app.state.crm.db.write() as session:
        try:
            survey = surveys.find(session, token)
        except surveys.SurveyNotFound:
            return _closed(request, "unknown")
        except surveys.SurveyClosed as exc:
            _language(request, _customer_language(session, exc.survey))
            return _closed(request, exc.reason)
        _language(request, _customer_language(session, survey))
        try:
            surveys.answer(session, token, rating, comment)
        except surveys.SurveyClosed as exc:
            return _closed(request, exc.reason)
        except surveys.SurveyError as exc:
            return _form(
                request,
                session,
                survey,
                token,
                422,
                error=exc.field,
                chosen=rating,
                comment=comment or "",
            )
    return _render(request, "operational/survey_done.html")
