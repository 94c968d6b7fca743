"""The error webhook operations raise for problems an admin can fix."""

from __future__ import annotations

from core.errors import CrmError


class WebhookError(CrmError):
    """A webhook endpoint or delivery request is refused; the message names the field
    (``url``, ``events``, ``description``...) and the reason, or the missing endpoint."""
