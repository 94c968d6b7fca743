"""Classes and profitability: the page ``/analytical/value``, its CSV export, the customer
360 panels "Customer class" and "Value", and the customer list's "Class" and "Value tier"
filters.

The page reads the latest ``classes`` and ``profit`` snapshots. Class and tier counts are
aggregates (``analytical.insight:read``); the top customers and the CSV list individual
customers and so follow the user's record rules (the CSV also needs
``analytical.insight:export``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.customers.exporter import neutralise
from core.i18n import N_, current_language, format_share
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, ui_principal
from plugins.analytical import classes, profitability
from plugins.analytical.models import CustomerClass, Profit, Run
from plugins.analytical.pages import (
    READ,
    analytics_page,
    new_router,
    require,
    snapshot_row,
    visible_customers,
)

router = new_router()

EXPORT = "analytical.insight:export"
#: How many customers the page's "top customers by margin" table shows.
TOP = 50
TIER_LABELS = {"A": N_("A"), "B": N_("B"), "C": N_("C")}
CSV_COLUMNS = (
    "customer_id",
    "name",
    "revenue_minor",
    "cogs_minor",
    "cost_to_serve_minor",
    "margin_minor",
    "tier",
    "lines_without_cost",
    "categories",
    "preferred_channel",
)


def _top_customers(session: Session, crm: Any, principal: Principal, run: Run) -> list[Any]:
    from core.customers.models import Customer

    query = (
        select(Profit, Customer.display_name)
        .join(Customer, Customer.id == Profit.customer_id)
        .where(Profit.run_id == run.id)
        .order_by(Profit.margin_minor.desc(), Profit.customer_id)
        .limit(TOP)
    )
    return list(session.execute(visible_customers(query, crm, principal)).all())


def _class_rows(run: Run | None) -> list[dict[str, Any]]:
    counts = ((run.summary or {}).get("classes") or {}) if run else {}
    total = sum(counts.values())
    return [
        {
            "code": code,
            "label": classes.CLASS_LABELS[code],
            "plan": classes.CARE_PLANS[code],
            "customers": counts.get(code, 0),
            "share": counts.get(code, 0) / total if total else None,
        }
        for code in classes.CLASSES
    ]


def _pareto_chart(ctx: UIContext, summary: dict[str, Any]) -> dict[str, Any] | None:
    points = summary.get("pareto") or []
    if not summary.get("positive_margin_minor"):
        return None
    language = current_language()
    return {
        "labels": [format_share(p["percent"] / 100, language, 0) for p in points],
        "series": [
            {
                "label": ctx.gettext("Share of margin"),
                "data": [round(p["share"] * 100, 1) for p in points],
            },
            {
                "label": ctx.gettext("Equal shares"),
                "data": [p["percent"] for p in points],
            },
        ],
        "percent": True,
    }


def _class_chart(ctx: UIContext, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not any(r["customers"] for r in rows):
        return None
    return {
        "labels": [ctx.gettext(label) for label in (r["label"] for r in rows)],
        "series": [{"label": ctx.gettext("Customers"), "data": [r["customers"] for r in rows]}],
    }


@router.get("/value", response_class=HTMLResponse, openapi_extra=access(READ))
def value_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Class counts, value tiers, the margin Pareto curve and the top customers by margin."""
    require(principal, READ)
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        class_run = classes.latest_run(session)
        profit_run = profitability.latest_run(session)
        class_rows = _class_rows(class_run)
        summary = (profit_run.summary or {}) if profit_run else {}
        params = (profit_run.params or {}) if profit_run else {}
        top = _top_customers(session, crm, principal, profit_run) if profit_run else []
        return analytics_page(
            ctx,
            "analytical/value.html",
            class_run=class_run,
            class_rows=class_rows,
            class_chart=_class_chart(ctx, class_rows),
            class_params=(class_run.params or {}) if class_run else {},
            profit_run=profit_run,
            summary=summary,
            params=params,
            tiers=[(t, TIER_LABELS[t], (summary.get("tiers") or {}).get(t)) for t in "ABC"],
            pareto_chart=_pareto_chart(ctx, summary),
            top=top,
            top_limit=TOP,
            currency=params.get("currency") or crm.settings.default_currency,
            channel_labels=_channel_labels(),
            can_export=principal.can(EXPORT),
        )


def _channel_labels() -> dict[str, str]:
    from plugins.operational.views import CHANNEL_LABELS

    return CHANNEL_LABELS


def _csv_rows(crm: Any, principal: Principal) -> Iterator[str]:
    from core.customers.models import Customer

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    with crm.db.session() as session:
        run = profitability.latest_run(session)
        if run is not None:
            query = (
                select(Profit, Customer.display_name)
                .join(Customer, Customer.id == Profit.customer_id)
                .where(Profit.run_id == run.id)
                .order_by(Profit.margin_minor.desc(), Profit.customer_id)
            )
            for count, (row, name) in enumerate(
                session.execute(
                    visible_customers(query, crm, principal).execution_options(yield_per=1000)
                ),
                1,
            ):
                writer.writerow([neutralise(cell) for cell in _csv_cells(row, name)])
                if count % 1000 == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
    yield buffer.getvalue()


def _csv_cells(row: Profit, name: str) -> list[str]:
    return [
        str(row.customer_id),
        name or "",
        str(row.revenue_minor),
        str(row.cogs_minor),
        str(row.cost_to_serve_minor),
        str(row.margin_minor),
        row.tier,
        str(row.lines_without_cost),
        ";".join(row.categories or []),
        row.preferred_channel or "",
    ]


@router.get("/value.csv", openapi_extra=access(EXPORT))
def value_csv(request: Request, principal: Principal = Depends(ui_principal)) -> Response:
    """The latest per-customer profitability as CSV, within the user's record rules."""
    from core import audit

    require(principal, EXPORT)
    crm = request.app.state.crm
    with crm.db.write() as session:
        session.info[audit.REQUEST_KEY] = request
        audit.record(session, "export", "analytical.profit", None, detail="web export")
    return StreamingResponse(
        _csv_rows(crm, principal),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="profitability.csv"'},
    )


def class_slot(ctx: Any, customer_id: int) -> str:
    """The customer 360 panel "Customer class": the class, why, and the care plan."""
    run = classes.latest_run(ctx.session)
    row = snapshot_row(ctx.session, run, CustomerClass, customer_id)
    return ctx.render(
        "analytical/class_slot.html",
        run=run,
        row=row,
        why=classes.parse_reason(row.reason) if row else {},
        label=classes.CLASS_LABELS.get(row.klass, row.klass) if row else None,
        plan=classes.CARE_PLANS.get(row.klass) if row else None,
    )


def value_slot(ctx: Any, customer_id: int) -> str:
    """The customer 360 panel "Value": revenue, costs, margin, tier and needs."""
    run = profitability.latest_run(ctx.session)
    row = snapshot_row(ctx.session, run, Profit, customer_id)
    params = (run.params or {}) if run else {}
    return ctx.render(
        "analytical/value_slot.html",
        run=run,
        row=row,
        currency=params.get("currency") or ctx.crm.settings.default_currency,
        channel_labels=_channel_labels(),
    )


def customer_filters() -> list[Any]:
    """The "Class" and "Value tier" filters of the customer list (latest snapshots)."""
    from core.ui import Filter

    return [
        Filter(
            "analytical_class",
            N_("Class"),
            [(code, classes.CLASS_LABELS[code]) for code in classes.CLASSES],
            apply=classes.class_filter,
        ),
        Filter(
            "analytical_tier",
            N_("Value tier"),
            [(tier, TIER_LABELS[tier]) for tier in profitability.TIERS],
            apply=profitability.tier_filter,
        ),
    ]


def extend_customer_list(views: dict[str, Any]) -> None:
    """Append the class and tier filters to the core's customer list (``extend_views``)."""
    view = views.get("customer.list")
    if view is not None:
        view.filters.extend(customer_filters())
