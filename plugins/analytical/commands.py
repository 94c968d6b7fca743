"""``crm analytics``: RFM segments and customer lifetime value."""

from __future__ import annotations

import csv
import datetime as dt

import click

from core.commands import open_crm, print_json, print_table
from plugins.analytical.clv_cli import clv_group
from plugins.analytical.refresh import step_names


@click.group()
def analytics() -> None:
    """Customer analytics: snapshots (refresh), RFM, lifetime value, segments, campaigns."""


def _date(value: str | None) -> dt.date:
    if value is None:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-11-22") from None


@analytics.command()
@click.option("--as-of", "as_of", default=None, help="Score as of this date (default: today, UTC).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write one row per customer to this CSV file.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="How to print the segment counts.",
)
def rfm(as_of: str | None, out: str | None, fmt: str) -> None:
    """Score customers 1-5 on recency, frequency and monetary value and segment them.

    The result is stored as the snapshot of that date (pages read it).
    """
    from sqlalchemy import select

    from core.customers.models import Customer
    from plugins.analytical import rfm as service
    from plugins.analytical.models import RfmScore

    day = _date(as_of)
    crm = open_crm()
    with crm.db.write() as session:
        run, counts = service.refresh(session, day)
        if out:
            query = (
                select(RfmScore, Customer.external_ref)
                .join(Customer, Customer.id == RfmScore.customer_id)
                .where(RfmScore.run_id == run.id)
                .order_by(RfmScore.customer_id)
            )
            with open(out, "w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(
                    [
                        "customer_id",
                        "external_ref",
                        "recency_days",
                        "frequency",
                        "monetary",
                        "r",
                        "f",
                        "m",
                        "segment",
                    ]
                )
                for score, ref in session.execute(query):
                    writer.writerow(
                        [
                            score.customer_id,
                            ref or "",
                            score.recency_days,
                            score.frequency,
                            score.monetary_minor,
                            score.r,
                            score.f,
                            score.m,
                            score.segment,
                        ]
                    )
    ordered = {name: counts.get(name, 0) for name, *_ in service.SEGMENTS}
    if fmt == "json":
        print_json({"as_of": day.isoformat(), "customers": run.rows, "segments": ordered})
    else:
        print_table(["segment", "customers"], [[k, v] for k, v in ordered.items()])
        click.echo(f"{run.rows} customers scored as of {day}")


@analytics.command()
@click.option(
    "--as-of", "as_of", default=None, help="Compute as of this date (default: today, UTC)."
)
@click.option(
    "--only",
    multiple=True,
    help="Only this step (repeatable): "
    + ", ".join(["rfm", "clv", "classes", "profit", "behaviour", "forecast", "kpi"]),
)
def refresh(as_of: str | None, only: tuple[str, ...]) -> None:
    """Recompute every analytics snapshot (RFM, lifetime value, classes, profitability,
    behaviour, forecasts, KPIs) as of one date, with a progress bar.

    Each step is stored when it finishes; if one fails the command stops with its name and
    exit status 1, and the snapshots stored before it stay. Run it nightly (cron or a timer).
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from plugins.analytical.refresh import STEPS, run_steps

    day = _date(as_of)
    unknown = sorted(set(only) - set(step_names()))
    if unknown:
        raise click.BadParameter(
            f"unknown step(s) {', '.join(unknown)}; known: {', '.join(step_names())}",
            param_hint="--only",
        )
    crm = open_crm()
    chosen = [step for step in STEPS if not only or step.name in only]
    done = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        transient=False,
    ) as progress:
        task = progress.add_task(f"analytics as of {day}", total=len(chosen))
        steps = run_steps(crm, day, list(only) or None)
        for step in chosen:
            progress.update(task, description=f"{step.label}")
            try:
                result = next(steps)
            except Exception as exc:
                raise click.ClickException(f"step {step.name} failed: {exc}") from exc
            done.append(result)
            progress.advance(task)
    print_table(
        ["step", "rows", "seconds"],
        [[d.step.name, d.rows, f"{d.seconds:.2f}"] for d in done],
        title=f"Analytics refreshed as of {day}",
    )


analytics.add_command(clv_group)

from plugins.analytical.campaigns_cli import campaigns_group, segments_group  # noqa: E402

analytics.add_command(segments_group)
analytics.add_command(campaigns_group)


def commands() -> list[click.Command]:
    """The command groups of the analytical module (``analytics rfm``, ``analytics clv``)."""
    return [analytics]
