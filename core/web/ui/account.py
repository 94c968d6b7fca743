"""Signing in and out, the user's language and password."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core import audit, auth, i18n
from core.errors import AuthError
from core.i18n import N_
from core.web import sessions
from core.web.access import access, public
from core.web.deps import Principal
from core.web.ui.context import (
    LANGUAGE_COOKIE,
    UIContext,
    anonymous_language,
    csrf_check,
    page,
    ui_principal,
)

router = APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)

#: Sign-ins whose password is checked at once: Argon2 is slow and large on purpose, so the others
#: wait on the event loop, not on worker threads that the pages need meanwhile.
SIGN_IN_CHECKS = anyio.CapacityLimiter(os.cpu_count() or 1)


def _safe_next(target: str | None) -> str:
    """A local path to go back to after signing in (never another site)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse, openapi_extra=public("the sign-in form"))
def login_page(request: Request) -> HTMLResponse:
    """Public on purpose: the sign-in form (``?lang=vi`` switches its language)."""
    chosen = request.query_params.get("lang")
    language = chosen if chosen in i18n.LANGUAGES else anonymous_language(request)
    i18n.set_language(language)
    response = page(
        UIContext(request, None),
        "login.html",
        next=_safe_next(request.query_params.get("next")),
        error=None,
    )
    if chosen == language:
        response.set_cookie(LANGUAGE_COOKIE, language, samesite="lax", httponly=True)
    return response


@router.post(
    "/login", response_class=HTMLResponse, openapi_extra=public("this is how a person signs in")
)
async def login(request: Request) -> Response:
    """Public on purpose: checks the password (throttled), then sets the session cookie."""
    form = await request.form()
    email = str(form.get("email", ""))
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    i18n.set_language(anonymous_language(request))
    crm = request.app.state.crm
    ip = request.client.host if request.client else None

    def check() -> tuple[int, int, str | None, int]:
        # In a worker thread: Argon2 takes a tenth of a second on purpose, and on the event
        # loop it held up every other request of the process meanwhile. Checked before the
        # write transaction, which would hold SQLite's write lock for as long.
        user_id, epoch, error, status_code = 0, 0, None, 401
        with crm.db.session() as read:
            checked = auth.check_sign_in(read, email, password, ip)
        with crm.db.write() as session:
            try:
                user = auth.record_sign_in(session, checked, ip)
                user_id, epoch = user.id, user.session_epoch
            except auth.ThrottledError:
                error = N_("Too many failed sign-ins. Wait a few minutes and try again.")
                status_code = 429
            except AuthError:
                error = N_("Wrong e-mail or password.")
        return user_id, epoch, error, status_code

    user_id, epoch, error, status_code = await anyio.to_thread.run_sync(
        check, limiter=SIGN_IN_CHECKS
    )
    if error:
        return page(
            UIContext(request, None),
            "login.html",
            status_code=status_code,
            next=target,
            error=error,
        )
    response = RedirectResponse(target, status_code=303)
    sessions.start(response, request, crm.settings.secret_key, user_id, epoch)
    return response


@router.post("/logout", openapi_extra=access(None))
def logout(request: Request, principal: Principal = Depends(ui_principal)) -> Response:
    """End every session of the user and go back to the login page."""
    from core.models import User

    with request.app.state.crm.db.write() as session:
        session.info[audit.REQUEST_KEY] = request
        user = session.get(User, principal.user.id)
        user.session_epoch += 1
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(sessions.COOKIE_NAME)
    return response


@router.get("/account", response_class=HTMLResponse, openapi_extra=access(None))
def account_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """The user's language and password."""
    return page(UIContext(request, principal), "account.html", message=None, errors={})


@router.post("/account/language", openapi_extra=access(None))
async def set_language(request: Request, principal: Principal = Depends(ui_principal)) -> Response:
    """Change the user's language (used on every page from now on)."""
    from core.models import User

    language = str((await request.form()).get("language", ""))
    if language not in i18n.LANGUAGES:
        return page(
            UIContext(request, principal),
            "account.html",
            status_code=422,
            message=None,
            errors={"language": N_("Choose one of the options.")},
        )
    with request.app.state.crm.db.write() as session:
        session.info[audit.REQUEST_KEY] = request
        session.get(User, principal.user.id).language = language
    response = RedirectResponse(request.headers.get("referer") or "/", status_code=303)
    response.set_cookie(LANGUAGE_COOKIE, language, samesite="lax", httponly=True)
    return response


@router.post("/account/password", response_class=HTMLResponse, openapi_extra=access(None))
async def change_password(
    request: Request, principal: Principal = Depends(ui_principal)
) -> Response:
    """Change the password after checking the current one; every session ends, so sign in."""
    from core import users
    from core.models import User

    form = await request.form()
    current = str(form.get("current", ""))
    new = str(form.get("new", ""))
    errors: dict[str, str] = {}
    with request.app.state.crm.db.write() as session:
        session.info[audit.REQUEST_KEY] = request
        user = session.get(User, principal.user.id)
        if not auth.verify_password(user, current):
            errors["current"] = N_("Wrong password.")
        elif new != str(form.get("confirm", "")):
            errors["confirm"] = N_("The two new passwords differ.")
        else:
            try:
                users.set_password(session, user, new)
            except ValueError as exc:
                errors["new"] = str(exc)
    if errors:
        return page(
            UIContext(request, principal),
            "account.html",
            status_code=422,
            message=None,
            errors=errors,
        )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(sessions.COOKIE_NAME)
    return response
