"""Security middleware: response headers and cross-site request refusal.

State-changing requests authenticated by the session cookie must come from our own origin:
``Sec-Fetch-Site: cross-site`` or a foreign ``Origin`` is refused, and a cookie request with
neither header is refused too. Bearer-token API calls carry no ambient credentials and skip this.
Every cookie set over HTTPS (``X-Forwarded-Proto`` of a trusted proxy included, see ``crm
serve``) is marked ``Secure``; an unhandled error's 500 answer carries the headers too.
Written as plain ASGI (not ``BaseHTTPMiddleware``), which costs next to nothing per request.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.web.sessions import COOKIE_NAME

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
# Swagger UI sets inline styles; its scripts stay same-origin only.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
    " script-src 'self'; frame-ancestors 'none'"
)


def _has_session_cookie(headers: Headers) -> bool:
    raw = headers.get("cookie")
    if not raw or COOKIE_NAME not in raw:
        return False
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw)
    except Exception:
        return True
    return COOKIE_NAME in cookie


def is_cross_site(headers: Headers) -> bool:
    """Whether a request comes from another site, judged by Fetch metadata and Origin."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is not None:
        return urlsplit(origin).netloc != headers.get("host", "")
    return _has_session_cookie(headers)


class SecurityMiddleware:
    """Adds security headers and refuses cross-site state changes made with cookies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse cross-site unsafe requests; add the headers to every response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(k.encode(), v.encode()) for k, v in HEADERS.items()]
        if scope["path"] == "/docs":
            extra[0] = (b"content-security-policy", DOCS_CSP.encode())
        https = scope.get("scheme") == "https"
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = message.get("headers", [])
                if https:
                    headers = [_secure(name, value) for name, value in headers]
                present = {k.lower() for k, _ in headers}
                message["headers"] = [*headers, *(h for h in extra if h[0] not in present)]
            await send(message)

        headers = Headers(scope=scope)
        bearer = headers.get("authorization", "").lower().startswith("bearer ")
        if scope["method"] not in SAFE_METHODS and not bearer and is_cross_site(headers):
            response: Any = JSONResponse({"detail": "cross-site request refused"}, status_code=403)
            await response(scope, receive, send_with_headers)
            return
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Starlette's outermost error middleware would answer without our headers
            if not started:
                error = PlainTextResponse("Internal Server Error", status_code=500)
                await error(scope, receive, send_with_headers)
            raise


def _secure(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    """A ``Set-Cookie`` header marked ``Secure`` (other headers unchanged)."""
    if name.lower() != b"set-cookie":
        return name, value
    attributes = {part.strip().lower() for part in value.split(b";")[1:]}
    return (name, value) if b"secure" in attributes else (name, value + b"; Secure")
