"""``/analytical/behaviour``: cohort retention, purchase rhythm and churn risk, read from the
latest ``behaviour`` snapshot; and the customer 360 panel "Churn risk"."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import and_, func, select

from core.i18n import N_
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, ui_principal
from plugins.analytical import behaviour
from plugins.analytical.models import Behaviour, RfmScore, Run
from plugins.analytical.pages import READ, analytics_page, new_router, require, snapshot_row
from plugins.analytical.snapshots import latest_run_id

router = new_router()

#: How many high-risk customers the page lists.
HIGH_RISK_LIMIT = 50


def heat_rows(cohorts: dict[str, Any]) -> list[dict[str, Any]]:
    """The cohort matrix with a heat level (``round(share * 10)``) per observed cell."""
    return [
        {
            "month": row["month"],
            "size": row["size"],
            "cells": [
                None
                if share is None
                else {"share": share, "count": count, "heat": min(10, round(share * 10))}
                for share, count in zip(row["shares"], row["counts"], strict=True)
            ],
        }
        for row in cohorts.get("cohorts", [])
    ]


def gap_chart(ctx: UIContext, gaps: dict[str, Any]) -> dict[str, Any]:
    """The histogram of customers' mean gaps between purchase days."""
    histogram = gaps.get("histogram", [])
    return {
        "labels": [bucket["label"] for bucket in histogram],
        "series": [
            {
                "label": ctx.gettext(N_("Customers")),
                "data": [bucket["customers"] for bucket in histogram],
            }
        ],
    }


def risk_chart(ctx: UIContext, risk: dict[str, int]) -> dict[str, Any]:
    """Customers per churn risk level."""
    return {
        "labels": [ctx.gettext(behaviour.RISK_LABELS[level]) for level in behaviour.RISKS],
        "series": [
            {
                "label": ctx.gettext(N_("Customers")),
                "data": [risk.get(level, 0) for level in behaviour.RISKS],
            }
        ],
    }


def high_risk(ctx: UIContext, run: Run) -> tuple[list[dict[str, Any]], int]:
    """The high-risk customers the user may see, highest monetary value (latest RFM snapshot)
    first, then the longest since their last purchase; and how many there are in all."""
    from core.customers.models import Customer
    from core.records import customer_condition

    session = ctx.session
    conditions = [Behaviour.run_id == run.id, Behaviour.churn_risk == "high"]
    visible = customer_condition(ctx.crm, ctx.principal.user)
    if visible is not None:
        conditions.append(visible)
    monetary = RfmScore.monetary_minor
    query = (
        select(Behaviour, Customer.display_name, monetary)
        .join(Customer, Customer.id == Behaviour.customer_id)
        .outerjoin(
            RfmScore,
            and_(
                RfmScore.customer_id == Behaviour.customer_id,
                RfmScore.run_id == latest_run_id("rfm"),
            ),
        )
        .where(*conditions)
        .order_by(
            func.coalesce(monetary, -1).desc(),
            Behaviour.days_since_last.desc(),
            Behaviour.customer_id,
        )
        .limit(HIGH_RISK_LIMIT)
    )
    rows = [
        {
            "row": row,
            "name": name,
            "monetary_minor": value,
            "reason": behaviour.reason_message(row.churn_reason),
        }
        for row, name, value in session.execute(query)
    ]
    total = session.scalar(
        select(func.count())
        .select_from(Behaviour)
        .join(Customer, Customer.id == Behaviour.customer_id)
        .where(*conditions)
    )
    return rows, int(total or 0)


@router.get("/behaviour", response_class=HTMLResponse, openapi_extra=access(READ))
def behaviour_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Cohort heat map, inter-purchase histogram, churn risk counts and high-risk customers."""
    require(principal)
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        run = behaviour.latest_run(session)
        summary = (run.summary or {}) if run else {}
        at_risk, at_risk_total = high_risk(ctx, run) if run else ([], 0)
        return analytics_page(
            ctx,
            "analytical/behaviour.html",
            run=run,
            cohorts=heat_rows(summary.get("cohorts", {})),
            columns=summary.get("cohorts", {}).get("columns", 0),
            gaps=summary.get("gaps", {}),
            gap_chart=gap_chart(ctx, summary.get("gaps", {})),
            risk=summary.get("risk", {}),
            basis=summary.get("basis", {}),
            risk_chart=risk_chart(ctx, summary.get("risk", {})),
            risk_labels=behaviour.RISK_LABELS,
            at_risk=at_risk,
            at_risk_total=at_risk_total,
            limit=HIGH_RISK_LIMIT,
            currency=crm.settings.default_currency,
        )


def churn_slot(ctx: Any, customer_id: int) -> str:
    """The customer 360 panel: churn risk, why, the usual gap and days since the last purchase."""
    run = behaviour.latest_run(ctx.session)
    row = snapshot_row(ctx.session, run, Behaviour, customer_id)
    return ctx.render(
        "analytical/churn_slot.html",
        run=run,
        row=row,
        label=behaviour.RISK_LABELS.get(row.churn_risk) if row else None,
        reason=behaviour.reason_message(row.churn_reason) if row else None,
    )
