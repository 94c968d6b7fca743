"""Signed-cookie sessions that the server can revoke.

The cookie holds the user id, the user's session epoch and a random nonce, signed with the
secret key; the nonce makes every sign-in a new session id, even two in the same second. Logout,
password change and deactivation raise the epoch in the database, which ends every session.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "crm_session"
MAX_AGE_SECONDS = 14 * 24 * 3600


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="crm-session")


def encode(secret_key: str, user_id: int, epoch: int) -> str:
    """The cookie value for a signed-in user."""
    return _serializer(secret_key).dumps({"u": user_id, "e": epoch, "n": secrets.token_urlsafe(12)})


def decode(secret_key: str, value: str) -> tuple[int, int] | None:
    """``(user_id, epoch)`` from a cookie value, or ``None`` if forged or expired."""
    try:
        data = _serializer(secret_key).loads(value, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    return data["u"], int(data.get("e", 0))


def start(response, request, secret_key: str, user_id: int, epoch: int) -> None:
    """Set the session cookie of a user who just signed in (HttpOnly, SameSite=Lax)."""
    response.set_cookie(
        COOKIE_NAME,
        encode(secret_key, user_id, epoch),
        max_age=MAX_AGE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
