"""The reports page, ``/operational/reports``: a table, a chart and a CSV download each."""

from __future__ import annotations

import csv
import datetime as dt
import io

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from core.customers.exporter import neutralise
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, page, ui_principal
from plugins.operational import reports
from plugins.operational.pages import new_router

router = new_router()


def _period(request: Request) -> tuple[dt.date, dt.date]:
    today = dt.datetime.now(dt.UTC).date()
    try:
        since = dt.date.fromisoformat(request.query_params.get("since") or "")
    except ValueError:
        since = today - dt.timedelta(days=30)
    try:
        until = dt.date.fromisoformat(request.query_params.get("until") or "")
    except ValueError:
        until = today
    if until < since:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "the period ends before it starts"
        )
    return since, until


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@router.get(
    "/reports", response_class=HTMLResponse, openapi_extra=access("operational.report:read")
)
def reports_page(request: Request, principal: Principal = Depends(ui_principal)) -> Response:
    """A report on screen (``?report=activity|pipeline|sla|satisfaction``) or as CSV."""
    if not principal.can("operational.report:read"):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "permission operational.report:read required"
        )
    name = request.query_params.get("report", "pipeline")
    if name not in reports.REPORTS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report {name!r}")
    since, until = _period(request)
    crm = request.app.state.crm
    with crm.db.session() as session:
        report = reports.build(
            name, session, crm, principal.user, _start(since), _start(until + dt.timedelta(days=1))
        )
        if request.query_params.get("format") == "csv":
            return _csv(report)
        ctx = UIContext(request, principal, session)
        chart = None
        if report.chart and report.rows:
            label, value = report.chart
            chart = {
                "labels": [str(r[label]) for r in report.rows],
                "series": [
                    {
                        "label": ctx.gettext(dict(report.columns)[value]),
                        "data": [r[value] for r in report.rows],
                    }
                ],
            }
        return page(
            ctx,
            "operational/reports.html",
            report=report,
            names=reports.REPORTS,
            since=since,
            until=until,
            chart=chart,
            currency=crm.settings.default_currency,
        )


def _csv(report: reports.Report) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([name for name, _ in report.columns])
    for row in report.rows:
        writer.writerow([neutralise(str(row[name])) for name, _ in report.columns])
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{report.name}.csv"'},
    )
