"""HTML pages for mailings, under ``/operational/``: the public unsubscribe page."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from core import i18n
from core.web.access import public
from core.web.ui.context import UIContext, anonymous_language, page
from plugins.operational import mailings
from plugins.operational.pages import new_router

router = new_router()
#: Why the unsubscribe page needs no sign-in (see ``unsubscribe_page``).
UNSUBSCRIBE = (
    "recipients of a mailing have no account; the signed token in the link is the credential"
)


def _read_token(request: Request, token: str) -> tuple[int, str] | None:
    """(recipient id, e-mail) of a token we signed; also sets the visitor's language."""
    i18n.set_language(anonymous_language(request))
    return mailings.read_unsubscribe_token(request.app.state.crm.settings.secret_key, token)


def _invalid(request: Request) -> HTMLResponse:
    return page(UIContext(request, None), "operational/unsubscribe_invalid.html", status_code=404)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, openapi_extra=public(UNSUBSCRIBE))
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """Public on purpose: the people who follow the link of a mailing are customers, who have
    no account; the signed token (only the mail's recipient has it) is the authorisation, and
    unsubscribing must never need a login. GET only asks for confirmation, because mail
    scanners and link previews open links without anyone clicking.
    """
    found = _read_token(request, token)
    if found is None:
        return _invalid(request)
    with request.app.state.crm.db.session() as session:
        already = mailings.is_unsubscribed(session, found[1])
    return page(
        UIContext(request, None),
        "operational/unsubscribe.html",
        email=found[1],
        already=already,
        action=request.url.path,
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse, openapi_extra=public(UNSUBSCRIBE))
def unsubscribe_confirm(request: Request, token: str) -> HTMLResponse:
    """Public on purpose (see the GET page): records that the address wants no more mailings.

    The router's CSRF check applies: the confirmation must come from the form of the GET page.
    """
    found = _read_token(request, token)
    if found is None:
        return _invalid(request)
    crm = request.app.state.crm
    with crm.db.write() as session:
        mailings.unsubscribe(session, crm, *found)
    return page(UIContext(request, None), "operational/unsubscribe_done.html", email=found[1])
