"""Security middleware: response headers and cross-site request refusal.

State-changing requests authenticated by the session cookie must come from our own origin:
``Sec-Fetch-Site: cross-site`` or a foreign ``Origin`` is refused, and a cookie request with
neither header is refused too. Bearer-token API calls carry no ambient credentials and skip this.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.web.sessions import COOKIE_NAME

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
# Swagger UI sets inline styles; its scripts stay same-origin only.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
    " script-src 'self'; frame-ancestors 'none'"
)


def is_cross_site(request: Request) -> bool:
    """Whether a request comes from another site, judged by Fetch metadata and Origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is not None:
        return urlsplit(origin).netloc != request.headers.get("host", "")
    return COOKIE_NAME in request.cookies


class SecurityMiddleware(BaseHTTPMiddleware):
    """Adds security headers and refuses cross-site state changes made with cookies."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Refuse cross-site unsafe requests, then add the headers to the response."""
        bearer = request.headers.get("authorization", "").lower().startswith("bearer ")
        if request.method not in SAFE_METHODS and not bearer and is_cross_site(request):
            response: Response = JSONResponse(
                {"detail": "cross-site request refused"}, status_code=403
            )
        else:
            response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path == "/docs":
            response.headers["Content-Security-Policy"] = DOCS_CSP
        return response
