"""The analytical module's panel on the customer 360 page: the latest RFM scores and segment."""

from __future__ import annotations

from typing import Any

from core.i18n import N_
from core.ui import Slot

SEGMENT_LABELS = {
    "champions": N_("Champions"),
    "loyal": N_("Loyal"),
    "potential_loyalists": N_("Potential loyalists"),
    "new": N_("New customers"),
    "promising": N_("Promising"),
    "need_attention": N_("Need attention"),
    "about_to_sleep": N_("About to sleep"),
    "at_risk": N_("At risk"),
    "cant_lose": N_("Can't lose"),
    "hibernating": N_("Hibernating"),
}


def _rfm_slot(ctx: Any, customer_id: int) -> str:
    from plugins.analytical import rfm
    from plugins.analytical.models import RfmScore
    from plugins.analytical.pages import snapshot_row

    run = rfm.latest_run(ctx.session)
    score = snapshot_row(ctx.session, run, RfmScore, customer_id)
    return ctx.render(
        "analytical/rfm_slot.html",
        run=run,
        score=score,
        label=SEGMENT_LABELS.get(score.segment, score.segment) if score else None,
        currency=ctx.crm.settings.default_currency,
    )


def slots() -> list[Slot]:
    """The module's customer 360 panels."""
    from plugins.analytical import behaviour_pages, clv_pages, value_pages

    return [
        Slot("analytical.rfm", N_("RFM segment"), _rfm_slot, "customer:read", order=12),
        Slot(
            "analytical.churn",
            N_("Churn risk"),
            behaviour_pages.churn_slot,
            "customer:read",
            order=16,
        ),
        Slot(
            "analytical.clv",
            N_("Lifetime value"),
            clv_pages.clv_slot,
            "analytical.insight:read",
            order=15,
        ),
        Slot(
            "analytical.class",
            N_("Customer class"),
            value_pages.class_slot,
            "customer:read",
            order=13,
        ),
        Slot(
            "analytical.value",
            N_("Value"),
            value_pages.value_slot,
            "analytical.insight:read",
            order=14,
        ),
    ]
