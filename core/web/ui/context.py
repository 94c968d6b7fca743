"""What every UI request needs: the signed-in user, CSRF protection, language, rendering.

CSRF uses a double-submit token on top of the origin check of ``core.web.security``: a random
token lives in the ``crm_csrf`` cookie (SameSite=Strict) and must come back in the form field
``csrf_token`` or, for htmx, the ``X-CSRF-Token`` header. Another site can neither read the
cookie nor set it, so it cannot forge the pair.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request, status
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy.orm import Session

from core import i18n
from core.web.deps import Principal, current_user

CSRF_COOKIE = "crm_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LANGUAGE_COOKIE = "crm_lang"
FLASH_COOKIE = "crm_flash"
FLASH_MAX_AGE = 60
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class LoginRequired(Exception):
    """The page needs a signed-in user; answered with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def is_htmx(request: Request) -> bool:
    """Whether htmx sent the request (it then wants a fragment, not a whole page)."""
    return bool(request.headers.get("hx-request"))


def login_redirect(request: Request, exc: LoginRequired) -> HTMLResponse:
    """Send the browser (or htmx) to the login page, coming back afterwards."""
    target = f"/login?next={quote(exc.next_url, safe='/')}"
    if is_htmx(request):
        return HTMLResponse("", status_code=200, headers={"HX-Redirect": target})
    return HTMLResponse("", status_code=303, headers={"Location": target})


def ui(request: Request) -> Any:
    """The app's UI state (registry, Jinja environment, translator)."""
    return request.app.state.ui


async def ui_principal(request: Request) -> Principal:
    """The signed-in user of a page; redirects to the login page when there is none."""
    try:
        principal = getattr(request.state, "principal", None) or await current_user(request)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            raise LoginRequired(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            ) from None
        raise
    i18n.set_language(principal.user.language)
    return principal


def anonymous_language(request: Request) -> str:
    """The language of a page seen before signing in: cookie, then the browser's preference."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in i18n.LANGUAGES:
        return chosen
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in i18n.LANGUAGES:
            return code
    return i18n.DEFAULT_LANGUAGE


def csrf_token(request: Request) -> str:
    """The request's CSRF token, creating one (set as a cookie on the response) if needed."""
    token = getattr(request.state, "csrf", None) or request.cookies.get(CSRF_COOKIE)
    if not token or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    request.state.csrf = token
    return token


async def csrf_check(request: Request) -> None:
    """Refuse a state-changing request whose CSRF token is missing or wrong (403)."""
    if request.method not in UNSAFE:
        return
    expected = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = (await request.form()).get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(expected, sent):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "the form expired or came from elsewhere; reload the page"
        )


def set_csrf_cookie(request: Request, response: Any) -> None:
    """Attach a newly created CSRF token to the response."""
    token = getattr(request.state, "new_csrf", None)
    if token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )


def _flash_signer(request: Request) -> Any:
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(request.app.state.crm.settings.secret_key, salt="crm-flash")


def flash_redirect(request: Request, url: str, message: str = "", error: str = "") -> Any:
    """Redirect to ``url`` showing ``message`` or ``error`` there once.

    The text travels in a short-lived signed cookie, translated already, never in the URL: a
    crafted link cannot put words on our pages.
    """
    from fastapi.responses import RedirectResponse

    translate = request.app.state.ui.translator.translate
    response = RedirectResponse(url, status_code=303)
    value = _flash_signer(request).dumps(
        {"m": translate(message) if message else "", "e": translate(error) if error else ""}
    )
    response.set_cookie(
        FLASH_COOKIE, value, max_age=FLASH_MAX_AGE, httponly=True, samesite="strict", path="/"
    )
    return response


def read_flash(request: Request) -> dict[str, str | None]:
    """The message and error a redirect left for this page (cleared once shown)."""
    from itsdangerous import BadSignature

    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return {"message": None, "error": None}
    request.state.flash_shown = True
    try:
        data = _flash_signer(request).loads(raw, max_age=FLASH_MAX_AGE)
    except BadSignature:
        return {"message": None, "error": None}
    return {"message": data.get("m") or None, "error": data.get("e") or None}


@dataclass
class UIContext:
    """Passed to templates, slots, widgets, tabs and actions: who asks, in what language."""

    request: Request
    principal: Principal | None
    session: Session | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def crm(self) -> Any:
        """The running CRM."""
        return self.request.app.state.crm

    @property
    def ui(self) -> Any:
        """The UI state: ``registry``, ``env``, ``translator``."""
        return self.request.app.state.ui

    @property
    def language(self) -> str:
        """The language pages are rendered in."""
        return i18n.current_language()

    def can(self, permission: str | None) -> bool:
        """Whether the user holds ``permission`` (``None``: no permission needed)."""
        return permission is None or (self.principal is not None and self.principal.can(permission))

    def gettext(self, message: str) -> str:
        """``message`` translated to the page's language."""
        return self.ui.translator.gettext(message)

    def render(self, template: str, **context: Any) -> Markup:
        """Render a template (autoescaped) to HTML for a slot, tab or widget."""
        return Markup(self.ui.env.get_template(template).render(ctx=self, **context))


def page(ctx: UIContext, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A full page (or an htmx fragment) rendered with the layout's common context."""
    request = ctx.request
    language = i18n.current_language()
    registry = ctx.ui.registry
    html = ctx.ui.env.get_template(template).render(
        ctx=ctx,
        request=request,
        user=ctx.principal.user if ctx.principal else None,
        menus=[m for m in registry.menus if ctx.can(m.permission)],
        assets=registry.assets,
        csrf=csrf_token(request),
        lang=language,
        rtl=i18n.is_rtl(language),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    set_csrf_cookie(request, response)
    if getattr(request.state, "flash_shown", False):
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response
