"""``crm smart-sales mine|rules|runs|mute|unmute``: mine association rules from the order
baskets, read the stored rules and runs, switch rules off and on.

Bad option values exit non-zero naming the option and change nothing; a refused mining (a
support so low it would explode memory) exits non-zero with the reason and leaves only the
failed run on record.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import click

from core.commands import FORMAT_OPTION, open_crm, print_json, print_table

#: The mining parameters as the options name them, to say which option a message is about.
OPTION_NAMES = {
    "min_support": "--min-support",
    "min_confidence": "--min-confidence",
    "min_lift": "--min-lift",
    "max_length": "--max-length",
    "max_basket_size": "--max-basket-size",
}


#: Columns of ``runs``.
RUN_COLUMNS = [
    *("id", "status", "started", "support", "confidence", "lift", "length", "since"),
    *("baskets", "capped", "rules", "alerts", "ms", "error"),
]


def _with_options(message: str) -> str:
    """``message`` with parameter names written as the command's options."""
    for name, option in OPTION_NAMES.items():
        message = message.replace(name, option)
    return message


def _ratio(value: float) -> str:
    return f"{value * 100:.2f}%"


def _number(value: float | None) -> str:
    return "∞" if value is None or math.isinf(value) else f"{value:.2f}"


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """What ``mine --format json`` says about the run."""
    keys = ("id", "status", "params", "baskets", "capped", "itemsets", "rules")
    return {k: run[k] for k in (*keys, "alerts_raised", "duration_ms")}


def printed_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A stored rule as the commands print it in JSON (SKUs on both sides)."""
    keys = ("antecedent", "consequent", "support", "confidence", "lift", "leverage")
    return {
        **{k: rule[k] for k in keys},
        "conviction": rule["conviction"],
        "count": rule["count"],
        "key": rule["key"],
    }


def _print_rules(rules: list[dict[str, Any]], title: str | None = None) -> None:
    print_table(
        ["antecedent", "consequent", "support", "confidence", "lift", "conviction", "key"],
        [
            [
                ", ".join(r["antecedent"]),
                ", ".join(r["consequent"]),
                _ratio(r["support"]),
                _ratio(r["confidence"]),
                _number(r["lift"]),
                _number(r["conviction"]),
                r["key"] + (" (muted)" if r.get("muted") else ""),
            ]
            for r in rules
        ],
        title=title,
    )


def summary_line(run: dict[str, Any]) -> str:
    """One line about a run: rules, baskets, capped, itemsets, time, alerts."""
    return (
        f"run {run['id']}: {run['rules']:,} rules from {run['baskets']:,} baskets "
        f"({run['capped']:,} capped), {run['itemsets']:,} frequent itemsets, "
        f"{run['duration_ms'] / 1000:.2f} s; {run['alerts_raised']:,} alerts raised"
    )


def _stored_rules(crm: Any, run_id: int) -> list[dict[str, Any]]:
    """The rules of run ``run_id`` in the order mined, each saying whether it is muted."""
    from sqlalchemy import select

    from plugins.smart_sales import runs
    from plugins.smart_sales.models import Rule

    with crm.db.session() as session:
        rows = list(session.scalars(select(Rule).where(Rule.run_id == run_id).order_by(Rule.id)))
        muted = runs.muted_keys(session, (r.key for r in rows))
        return [runs.rule_as_dict(r, r.key in muted) for r in rows]


@click.command("mine")
@click.option(
    "--min-support",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Share of baskets holding every product of a rule [default: setting min_support].",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of X's baskets that also hold Y [default: setting min_confidence].",
)
@click.option(
    "--min-lift",
    type=click.FloatRange(0),
    default=None,
    help="How many times the usual rate Y must reach [default: setting min_lift].",
)
@click.option(
    "--max-length",
    type=click.IntRange(2, 10),
    default=None,
    help="Most products in one rule [default: setting max_length].",
)
@click.option(
    "--max-basket-size",
    type=click.IntRange(2, 10_000),
    default=None,
    help="Orders with more distinct products are left out [default: setting max_basket_size].",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only orders placed on or after this day (UTC), YYYY-MM-DD [default: all orders].",
)
@FORMAT_OPTION
@click.option("--no-alerts", is_flag=True, help="Store the rules but raise no alerts.")
def mine_command(
    min_support: float | None,
    min_confidence: float | None,
    min_lift: float | None,
    max_length: int | None,
    max_basket_size: int | None,
    since: dt.datetime | None,
    fmt: str,
    no_alerts: bool,
) -> None:
    """Mine association rules from the order baskets, store them, raise alerts, print them."""
    from plugins.smart_sales import runs
    from plugins.smart_sales.mining import MiningError

    crm = open_crm()
    try:
        run = runs.run_mining(
            crm,
            min_support=min_support,
            min_confidence=min_confidence,
            min_lift=min_lift,
            max_length=max_length,
            max_basket_size=max_basket_size,
            since=since.date() if since else None,
            raise_alerts=not no_alerts,
        )
    except MiningError as exc:
        raise click.ClickException(f"mining refused: {_with_options(str(exc))}") from None
    data = runs.run_as_dict(run)
    rules = _stored_rules(crm, run.id)
    if fmt == "json":
        print_json({"run": run_summary(data), "rules": [printed_rule(r) for r in rules]})
        return
    _print_rules(rules, title=f"Rules of run {run.id}")
    click.echo(summary_line(data))


@click.command("rules")
@click.option("--run", "run_id", type=int, default=None, help="A run's id [default: current].")
@FORMAT_OPTION
def rules_command(run_id: int | None, fmt: str) -> None:
    """The stored rules of a run (by default the current one: the latest successful run)."""
    from plugins.smart_sales import runs
    from plugins.smart_sales.models import MiningRun

    crm = open_crm()
    with crm.db.session() as session:
        if run_id is None:
            run = runs.current_run(session)
            if run is None:
                raise click.ClickException(
                    "no successful mining run yet: run `crm smart-sales mine`"
                )
        else:
            run = session.get(MiningRun, run_id)
            if run is None:
                raise click.BadParameter(f"no run {run_id}", param_hint="--run")
        data = runs.run_as_dict(run)
    if data["status"] == "failed":
        raise click.ClickException(f"run {data['id']} failed: {data['error']}")
    rules = _stored_rules(crm, data["id"])
    if fmt == "json":
        print_json(
            {
                "run": run_summary(data),
                "rules": [printed_rule(r) | {"muted": r["muted"]} for r in rules],
            }
        )
        return
    _print_rules(rules, title=f"Rules of run {data['id']}")
    click.echo(summary_line(data))


@click.command("runs")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="Runs shown.")
@FORMAT_OPTION
def runs_command(limit: int, fmt: str) -> None:
    """Mining runs, newest first: parameters, baskets, rules, how long, errors."""
    from sqlalchemy import select

    from plugins.smart_sales import runs
    from plugins.smart_sales.models import MiningRun

    with open_crm().db.session() as session:
        query = select(MiningRun).order_by(MiningRun.id.desc()).limit(limit)
        rows = [runs.run_as_dict(r) for r in session.scalars(query)]
    if fmt == "json":
        print_json(rows)
        return
    print_table(
        RUN_COLUMNS,
        [
            [
                r["id"],
                r["status"],
                r["started_at"].strftime("%Y-%m-%d %H:%M"),
                r["params"].get("min_support"),
                r["params"].get("min_confidence"),
                r["params"].get("min_lift"),
                r["params"].get("max_length"),
                r["params"].get("since") or "",
                r["baskets"],
                r["capped"],
                r["rules"],
                r["alerts_raised"],
                r["duration_ms"],
                r["error"] or "",
            ]
            for r in rows
        ],
    )


def _user_id(session: Any, email: str | None) -> int | None:
    if email is None:
        return None
    from core.errors import NotFoundError
    from core.users import get_user

    try:
        return get_user(session, email).id
    except NotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="--by") from None


@click.command("mute")
@click.argument("key")
@click.option("--reason", required=True, help="Why this rule should raise no alerts.")
@click.option("--by", "by_email", default=None, metavar="EMAIL", help="Who mutes it (a user).")
def mute_command(key: str, reason: str, by_email: str | None) -> None:
    """Stop the rule KEY (such as 12,40>7) from raising alerts, in this run and later ones."""
    from core.errors import NotFoundError
    from plugins.smart_sales import runs

    with open_crm().db.write() as session:
        try:
            runs.mute(session, key, _user_id(session, by_email), reason)
        except NotFoundError as exc:
            raise click.BadParameter(str(exc), param_hint="KEY") from None
    click.echo(f"rule {key} muted")


@click.command("unmute")
@click.argument("key")
def unmute_command(key: str) -> None:
    """Let the rule KEY raise alerts again."""
    from plugins.smart_sales import runs

    with open_crm().db.write() as session:
        changed = runs.unmute(session, key)
    click.echo(f"rule {key} unmuted" if changed else f"rule {key} was not muted")


def register(group: click.Group) -> None:
    """Add ``mine``, ``rules``, ``runs``, ``mute`` and ``unmute`` to ``group``."""
    for command in (mine_command, rules_command, runs_command, mute_command, unmute_command):
        group.add_command(command)
