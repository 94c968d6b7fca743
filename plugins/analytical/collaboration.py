"""Campaigns as a record type other modules may refer to (notes, followers, feeds).

Campaigns have no record rule of their own: whoever may read campaigns sees all of them, so the
type declares no owner or customer column (``created_by`` is who made it, not a rule).
"""

from __future__ import annotations

from core.i18n import N_
from core.records import RecordType
from plugins.analytical.models import Campaign

CAMPAIGN = "analytical.campaign"


def record_types() -> list[RecordType]:
    """The campaign, shown on its page under ``/analytical/campaigns/``."""
    return [
        RecordType(
            CAMPAIGN,
            N_("Campaign"),
            Campaign,
            "/analytical/campaigns/{id}",
            title="name",
        )
    ]
