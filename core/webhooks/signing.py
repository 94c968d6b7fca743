"""Signing webhook requests, and checking a signature (for receivers, and for our tests).

Each request carries ``X-CRM-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
HMAC-SHA256, keyed with the endpoint's secret, of ``f"{t}.{body}"`` (the raw request body as
UTF-8). A receiver recomputes it, compares in constant time, and refuses a timestamp too far
from its clock, so a captured request cannot be replayed later. This module depends only on
the standard library, so receivers may copy :func:`verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-CRM-Signature"
#: Signatures older or newer than this are refused by :func:`verify_signature` by default.
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """A new endpoint secret (shown once to the admin, stored to sign requests)."""
    return secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: str | bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed with ``secret``."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    message = f"{timestamp}.".encode("ascii") + raw
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: str | bytes) -> str:
    """The value of the ``X-CRM-Signature`` header: ``t=<timestamp>,v1=<hex>``."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str,
    body: str | bytes,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether ``header`` (``X-CRM-Signature``) signs ``body`` with ``secret``, recently.

    ``body`` is the raw request body. The timestamp must lie within ``tolerance_seconds`` of
    ``now`` (default: the current time). Several ``v1=`` parts may be present; one matching
    is enough. The comparison runs in constant time.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp, body)
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(expected.encode(), candidate.encode("utf-8", "replace"))
    return found
