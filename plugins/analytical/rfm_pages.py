"""The RFM page, ``/analytical/rfm``: segment sizes, the R x F grid, segment sizes over time and
the top customers of a chosen segment (within the user's record rules).

Everything comes from the stored RFM snapshot (``rfm.refresh``): the figures from the runs'
summaries, the customer list from ``analytical_rfm`` rows of the latest run. A user whose record
rules hide some customers gets the figures summed over the customers they may see instead (a
segment's mean spend must not tell another team's customer's total).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.customers.models import Customer
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, ui_principal
from plugins.analytical import rfm
from plugins.analytical.models import RfmScore, Run
from plugins.analytical.pages import READ, analytics_page, new_router, require, visible_customers
from plugins.analytical.views import SEGMENT_LABELS

router = new_router()

#: How many customers the segment list shows; how many past runs the history chart draws.
TOP = 50
HISTORY = 24
SEGMENT_NAMES = tuple(name for name, *_ in rfm.SEGMENTS)


def chosen_segment(request: Request) -> str:
    """The ``segment`` query parameter (champions by default); 422 naming it when unknown."""
    segment = request.query_params.get("segment") or SEGMENT_NAMES[0]
    if segment not in SEGMENT_NAMES:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"segment: unknown segment {segment!r}; known: {', '.join(SEGMENT_NAMES)}",
        )
    return segment


@router.get("/rfm", response_class=HTMLResponse, openapi_extra=access(READ))
def rfm_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """RFM segments of the latest snapshot, their history and a segment's top customers."""
    require(principal)
    segment = chosen_segment(request)
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        run = rfm.latest_run(session)
        summary = (run.summary or {}) if run else {}
        if run is not None and summary.get("segments") is not None:
            summary = {**summary, **(visible_summary(session, crm, principal, run.id) or {})}
        sizes = segment_rows(summary)
        return analytics_page(
            ctx,
            "analytical/rfm.html",
            run=run if summary.get("segments") is not None else None,
            sizes=sizes,
            scored=summary.get("customers", run.rows if run else 0),
            size_chart=size_chart(ctx, sizes),
            grid=heat_grid(summary.get("grid")),
            history=history_chart(ctx, session, crm, principal),
            segment=segment,
            segments=[(name, SEGMENT_LABELS[name]) for name in SEGMENT_NAMES],
            customers=top_customers(session, crm, principal, run, segment),
            currency=crm.settings.default_currency,
        )


def segment_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per segment: label, customers, share of all scored customers, mean metrics."""
    counts = summary.get("segments") or {}
    total = sum(counts.values())
    averages = summary.get("averages") or {}
    return [
        {
            "name": name,
            "label": SEGMENT_LABELS[name],
            "customers": counts.get(name, 0),
            "share": counts.get(name, 0) / total if total else 0.0,
            "average": averages.get(name),
        }
        for name in SEGMENT_NAMES
        if counts
    ]


def size_chart(ctx: UIContext, sizes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Bar chart of the customers per segment."""
    if not sizes:
        return None
    labels = [row["label"] for row in sizes]  # marked with N_ in SEGMENT_LABELS
    return {
        "labels": [ctx.gettext(label) for label in labels],
        "series": [
            {"label": ctx.gettext("Customers"), "data": [row["customers"] for row in sizes]}
        ],
    }


def heat_grid(grid: list[list[int]] | None) -> list[list[dict[str, int]]] | None:
    """The 5 x 5 counts (rows R5 down to R1, columns F1 to F5) with a heat level 0-10 each."""
    if not grid:
        return None
    largest = max(max(row) for row in grid) or 1
    return [
        [{"count": count, "heat": round(10 * count / largest)} for count in grid[r - 1]]
        for r in range(5, 0, -1)
    ]


def visible_summary(
    session: Session, crm: Any, principal: Principal, run_id: int
) -> dict[str, Any] | None:
    """The run's summary (``rfm.summarise``) over the customers the user may see; ``None`` when
    they see every customer (the stored summary is then theirs)."""
    from core.records import customer_condition

    condition = customer_condition(crm, principal.user)
    if condition is None:
        return None
    query = (
        select(
            RfmScore.r,
            RfmScore.f,
            func.count(),
            func.sum(RfmScore.recency_days),
            func.sum(RfmScore.frequency),
            func.sum(RfmScore.monetary_minor),
        )
        .join(Customer, Customer.id == RfmScore.customer_id)
        .where(RfmScore.run_id == run_id, condition)
        .group_by(RfmScore.r, RfmScore.f)
    )
    names = ("r", "f", "customers", "recency_days", "frequency", "monetary_minor")
    cells = [
        dict(zip(names, (int(v or 0) for v in row), strict=True)) for row in session.execute(query)
    ]
    return rfm.summarise(cells)


def history_chart(
    ctx: UIContext, session: Session, crm: Any, principal: Principal
) -> dict[str, Any] | None:
    """Line chart of each segment's size over the last RFM runs (one point per as-of date),
    over the customers the user may see."""
    runs = list(
        session.execute(
            select(Run.id, Run.as_of, Run.summary)
            .where(Run.kind == "rfm")
            .order_by(Run.as_of.desc(), Run.id.desc())
            .limit(HISTORY)
        )
    )[::-1]
    runs = [
        (as_of, (visible_summary(session, crm, principal, run_id) or summary))
        for run_id, as_of, summary in runs
        if summary and "segments" in summary
    ]
    if not runs:
        return None
    return {
        "labels": [as_of.isoformat() for as_of, _ in runs],
        "series": [
            {
                "label": ctx.gettext(SEGMENT_LABELS[name]),
                "data": [summary["segments"].get(name, 0) for _, summary in runs],
            }
            for name in SEGMENT_NAMES
        ],
    }


def top_customers(
    session: Session, crm: Any, principal: Principal, run: Run | None, segment: str
) -> list[Any]:
    """The segment's customers the user may see, highest monetary value first."""
    if run is None:
        return []
    query = (
        select(RfmScore, Customer.display_name)
        .join(Customer, Customer.id == RfmScore.customer_id)
        .where(RfmScore.run_id == run.id, RfmScore.segment == segment)
        .order_by(RfmScore.monetary_minor.desc(), RfmScore.customer_id)
        .limit(TOP)
    )
    return list(session.execute(visible_customers(query, crm, principal)))
