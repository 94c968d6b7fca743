"""The analytical module's home dashboard widgets (``dashboard_widgets`` hook).

They read the latest snapshots (``crm analytics refresh``): without a snapshot a number widget
is empty and a chart has no bars, and the note says so. A user whose record rules hide some
customers gets the snapshot's figures computed live over the customers they may see
(``kpi.summary_for``; the class counts over their customers' rows of the snapshot).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from core.i18n import N_
from core.ui import Widget
from plugins.analytical import kpi

READ = "analytical.insight:read"
#: Months of the revenue chart: the eleven complete months before the as-of month, and it.
REVENUE_MONTHS = 12


def _summary(ctx: Any, section: str) -> dict[str, Any] | None:
    """The latest KPI snapshot's figures the user may see (``section`` of them at least)."""
    run = kpi.latest_run(ctx.session)
    return kpi.summary_for(ctx.crm, ctx.principal.user, ctx.session, run, (section,))[0]


def revenue_this_month(ctx: Any) -> int | None:
    """Revenue of the latest KPI snapshot's month so far, in minor units (None: no snapshot)."""
    summary = _summary(ctx, "revenue")
    return kpi.last(summary["revenue"]["revenue_minor"]) if summary else None


def new_customers_this_month(ctx: Any) -> int | None:
    """Customers whose first order falls in the latest KPI snapshot's month so far."""
    summary = _summary(ctx, "acquisition")
    return kpi.last(summary["acquisition"]["new_customers"]) if summary else None


def retention_rate(ctx: Any) -> float | None:
    """The retention rate of the last complete month, in percent with one decimal."""
    summary = _summary(ctx, "retention")
    rate = kpi.last(summary["retention"]["rate"], 2) if summary else None
    return None if rate is None else round(rate * 100, 1)


def revenue_chart(ctx: Any) -> dict[str, Any]:
    """Revenue per month (major units of the default currency) from the latest KPI snapshot."""
    from core.money import minor_digits
    from plugins.analytical.kpi_pages import month_labels

    summary = _summary(ctx, "revenue")
    if summary is None:
        return {"labels": [], "series": []}
    scale = 10 ** minor_digits(summary["currency"])
    values = summary["revenue"]["revenue_minor"][-REVENUE_MONTHS:]
    return {
        "labels": month_labels(ctx, summary)[-REVENUE_MONTHS:],
        "series": [
            {
                "label": ctx.gettext(N_("Revenue (%(currency)s)"))
                % {"currency": summary["currency"]},
                "data": [v / scale for v in values],
            }
        ],
    }


def customers_per_class(ctx: Any) -> dict[str, Any]:
    """Customers (that the user may see) per class in the latest ``classes`` snapshot (no bars
    without one)."""
    from core.records import customer_condition
    from plugins.analytical.classes import CLASS_LABELS
    from plugins.analytical.models import CustomerClass
    from plugins.analytical.snapshots import latest_run

    run = latest_run(ctx.session, "classes")
    if run is None:
        return {"labels": [], "series": []}
    mine = kpi.of_customers(
        CustomerClass.customer_id, customer_condition(ctx.crm, ctx.principal.user)
    )
    counts = dict(
        ctx.session.execute(
            select(CustomerClass.klass, func.count())
            .where(CustomerClass.run_id == run.id, *mine)
            .group_by(CustomerClass.klass)
        ).all()
    )
    order = [k for k in CLASS_LABELS if k in counts] + sorted(set(counts) - set(CLASS_LABELS))
    return {
        "labels": [ctx.gettext(CLASS_LABELS[k]) if k in CLASS_LABELS else k for k in order],
        "series": [{"label": ctx.gettext(N_("Customers")), "data": [counts[k] for k in order]}],
    }


def widgets() -> list[Widget]:
    """The module's dashboard widgets, for users holding ``analytical.insight:read``."""
    return [
        Widget(
            "analytical.revenue_month",
            N_("Revenue this month"),
            revenue_this_month,
            kind="money",
            permission=READ,
            order=60,
            note=N_(
                "Orders of the month up to the latest KPI snapshot's date, default currency, "
                "cancelled and returned left out, customers you may see; empty until "
                "“crm analytics refresh” has run."
            ),
        ),
        Widget(
            "analytical.new_customers",
            N_("New customers this month"),
            new_customers_this_month,
            permission=READ,
            order=61,
            note=N_(
                "Customers you may see whose first order falls in the month, up to the latest KPI "
                "snapshot's date; empty until “crm analytics refresh” has run."
            ),
        ),
        Widget(
            "analytical.retention",
            N_("Retention rate last month, %"),
            retention_rate,
            permission=READ,
            order=62,
            note=N_(
                "Of the customers you may see who bought in the three months before last "
                "month, the percentage who bought again in it; empty until “crm analytics "
                "refresh” has run."
            ),
        ),
        Widget(
            "analytical.revenue_chart",
            N_("Revenue per month"),
            revenue_chart,
            kind="chart",
            chart="bar",
            permission=READ,
            order=63,
            note=N_(
                "Order totals in the default currency of the last twelve months from the latest "
                "KPI snapshot (the last month so far), customers you may see; no bars until it "
                "has been computed."
            ),
        ),
        Widget(
            "analytical.classes",
            N_("Customers per class"),
            customers_per_class,
            kind="chart",
            chart="bar",
            permission=READ,
            order=64,
            note=N_(
                "Customers you may see per class (loyal, potential, new, unaware) in the latest "
                "class snapshot; no bars until “crm analytics refresh” has computed one."
            ),
        ),
    ]
