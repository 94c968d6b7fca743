"""``crm analytics clv fit`` and ``crm analytics clv predict``: customer lifetime value.

Nothing is stored: each command reads the calibration summary and fits BG/NBD and
Gamma-Gamma again (see ``plugins.analytical.clv``).
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from core.commands import FORMAT_OPTION, open_crm, print_json, print_table

if TYPE_CHECKING:
    from plugins.analytical.clv import Fit, Summary

PREDICT_COLUMNS = (
    "customer_id",
    "frequency",
    "recency",
    "T",
    "expected_purchases",
    "probability_alive",
    "expected_spend_minor",
    "clv_minor",
)


def _calibration_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--until``, ``--unit`` and ``--currency``, shared by ``fit`` and ``predict``."""
    for option in reversed(
        (
            click.option(
                "--until",
                type=click.DateTime(formats=["%Y-%m-%d"]),
                default=None,
                help="Last day (UTC, included) of the calibration period [default: today].",
            ),
            click.option(
                "--unit",
                type=click.Choice(["day", "week"]),
                default="week",
                show_default=True,
                help="Unit of recency, T and the horizon.",
            ),
            click.option(
                "--currency",
                default=None,
                help="Only orders in this currency (needed when orders use several).",
            ),
        )
    ):
        command = option(command)
    return command


@click.group("clv")
def clv_group() -> None:
    """Customer lifetime value (BG/NBD purchases x Gamma-Gamma spend)."""


@clv_group.command("fit")
@_calibration_options
@FORMAT_OPTION
def fit(until: dt.datetime | None, unit: str, currency: str | None, fmt: str) -> None:
    """Fit the models on orders up to --until and print their parameters."""
    data = _summary(until, unit, currency)
    bg, gg = _fit(data)
    result = {
        "until": data.until.isoformat(),
        "unit": unit,
        "currency": data.currency,
        "customers": len(data),
        "repeat_customers": data.repeat_customers,
        "bgnbd": {**bg.params, "log_likelihood": bg.log_likelihood},
        "gamma_gamma": {**gg.params, "log_likelihood": gg.log_likelihood},
    }
    if fmt == "json":
        print_json(result)
        return
    rows = [["bgnbd", k, f"{v:.6g}"] for k, v in result["bgnbd"].items()]
    rows += [["gamma_gamma", k, f"{v:.6g}"] for k, v in result["gamma_gamma"].items()]
    title = (
        f"{len(data)} customers ({data.repeat_customers} with repeat purchases), "
        f"orders up to {data.until.isoformat()}, unit {unit}, currency {data.currency}"
    )
    print_table(["model", "parameter", "value"], rows, title=title)


@clv_group.command("predict")
@click.option(
    "--horizon",
    type=click.IntRange(min=1),
    required=True,
    help="How many units (--unit) ahead.",
)
@_calibration_options
@click.option(
    "--discount-rate",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Discount rate per unit (0.01 = 1 % a unit).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="CSV file to write [default: standard output].",
)
def predict(
    horizon: int,
    until: dt.datetime | None,
    unit: str,
    currency: str | None,
    discount_rate: float,
    out: Path | None,
) -> None:
    """Fit, then write each customer's expected purchases, spend and CLV over --horizon as CSV.

    Money columns (*_minor) are integer minor units of the currency.
    """
    from plugins.analytical import clv

    data = _summary(until, unit, currency)
    bg, gg = _fit(data)
    args = (data.frequency, data.recency, data.T)
    purchases = clv.expected_purchases(bg.params, horizon, *args)
    alive = clv.probability_alive(bg.params, *args)
    try:
        spend = clv.expected_spend(gg.params, data.frequency, data.monetary)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    value = clv.clv(bg.params, gg.params, *args, data.monetary, horizon, discount_rate)
    columns = (
        data.customer_id,
        data.frequency,
        data.recency.round(4),
        data.T.round(4),
        purchases.round(6),
        alive.round(6),
        clv.to_minor(spend, data.currency),
        clv.to_minor(value, data.currency),
    )
    rows = zip(*(c.tolist() for c in columns), strict=True)
    if out is None:
        _write_csv(sys.stdout, rows)
        return
    with out.open("w", newline="", encoding="utf-8") as handle:
        _write_csv(handle, rows)
    click.echo(f"Wrote {len(data)} customers to {out}", err=True)


def _write_csv(handle: Any, rows: Any) -> None:
    """The header and the rows."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(PREDICT_COLUMNS)
    writer.writerows(rows)


def _summary(until: dt.datetime | None, unit: str, currency: str | None) -> Summary:
    """The calibration summary up to ``until`` (today, UTC, by default)."""
    from plugins.analytical import clv

    day = until.date() if until is not None else dt.datetime.now(dt.UTC).date()
    crm = open_crm()
    try:
        with crm.db.session() as session:
            return clv.summary(session, day, unit, currency)
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def _fit(data: Summary) -> tuple[Fit, Fit]:
    """Both models fitted on ``data``; too little data is a one-line error (exit 1)."""
    from plugins.analytical import clv

    try:
        bg = clv.fit_bgnbd(data.frequency, data.recency, data.T)
        gg = clv.fit_gamma_gamma(data.frequency, data.monetary)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    return bg, gg
