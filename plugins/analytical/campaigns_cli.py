"""``crm analytics segments`` and ``crm analytics campaigns``: saved segments, campaigns with a
control group, hand-off to a mailing, results.

Bad input exits non-zero with a message naming the option or field, and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from core.commands import FORMAT_OPTION, open_crm, print_json, print_table
from core.errors import Conflict, Invalid, StaleVersion


def _definition(text: str) -> dict[str, Any]:
    """The ``--definition`` JSON, parsed and validated."""
    from plugins.analytical import segments

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--definition") from None
    try:
        return segments.clean(value)
    except Invalid as exc:
        raise click.BadParameter(str(exc), param_hint="--definition") from None


@contextmanager
def _failures() -> Iterator[None]:
    """Service errors as click errors (the transaction is rolled back: nothing changes)."""
    from sqlalchemy.orm.exc import StaleDataError

    try:
        yield
    except (Invalid, Conflict, StaleVersion, StaleDataError) as exc:
        raise click.ClickException(str(exc)) from None


def _echo_preview(count: int, customers: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        print_json({"count": count, "customers": customers})
        return
    print_table(
        ["id", "name", "country"],
        [[c["id"], c["display_name"], c["country"] or ""] for c in customers],
        title=f"{count} customers match",
    )


# --- segments -----------------------------------------------------------------------------------


@click.group("segments")
def segments_group() -> None:
    """Saved dynamic segments (RFM segment, class, tier, CLV, tags, country, purchases)."""


@segments_group.command("list")
@FORMAT_OPTION
def list_segments(fmt: str) -> None:
    """Saved segments by name."""
    from sqlalchemy import select

    from plugins.analytical import segments
    from plugins.analytical.models import Segment

    with open_crm().db.session() as session:
        rows = [
            segments.segment_as_dict(s)
            for s in session.scalars(select(Segment).order_by(Segment.name))
        ]
    if fmt == "json":
        print_json(rows)
        return
    print_table(
        ["id", "name", "definition", "version"],
        [[r["id"], r["name"], json.dumps(r["definition"]), r["version"]] for r in rows],
    )


@segments_group.command("show")
@click.argument("segment")
@FORMAT_OPTION
def show_segment(segment: str, fmt: str) -> None:
    """A segment (id or name) and how many customers it holds now."""
    from plugins.analytical import segments

    crm = open_crm()
    with crm.db.session() as session:
        found = segments.find_segment(session, segment)
        if found is None:
            raise click.BadParameter(f"no segment {segment!r}", param_hint="SEGMENT")
        data = segments.segment_as_dict(found)
        now = segments.preview(session, found.definition, crm=crm)
    data["count"] = now.count
    if fmt == "json":
        print_json(data)
        return
    print_table(["field", "value"], [[k, json.dumps(v, default=str)] for k, v in data.items()])


@segments_group.command("create")
@click.option("--name", required=True, help="A unique name.")
@click.option("--definition", required=True, help='Criteria as JSON, e.g. {"tiers": ["A"]}.')
@click.option("--description", default=None, help="What the segment is for.")
def create_segment(name: str, definition: str, description: str | None) -> None:
    """Save a segment."""
    from plugins.analytical import segments

    criteria = _definition(definition)
    with _failures(), open_crm().db.write() as session:
        segment = segments.create_segment(session, name, criteria, description)
        message = f"segment {segment.id} {segment.name!r} saved"
    click.echo(message)


@segments_group.command("preview")
@click.option("--definition", required=True, help="Criteria as JSON.")
@FORMAT_OPTION
def preview_segment(definition: str, fmt: str) -> None:
    """Count the customers a definition matches now, and list the first 20."""
    from plugins.analytical import segments

    criteria = _definition(definition)
    crm = open_crm()
    with crm.db.session() as session:
        found = segments.preview(session, criteria, crm=crm)
    _echo_preview(found.count, found.customers, fmt)


@segments_group.command("delete")
@click.argument("segment")
def delete_segment(segment: str) -> None:
    """Delete a segment (id or name); campaigns frozen from it keep their lists."""
    from plugins.analytical import segments

    with _failures(), open_crm().db.write() as session:
        found = segments.find_segment(session, segment)
        if found is None:
            raise click.BadParameter(f"no segment {segment!r}", param_hint="SEGMENT")
        segments.delete_segment(session, found, found.version)
    click.echo(f"segment {segment!r} deleted")


# --- campaigns ----------------------------------------------------------------------------------


@click.group("campaigns")
def campaigns_group() -> None:
    """Campaigns: freeze a segment's list with a control group, hand it to a mailing, measure."""


@campaigns_group.command("list")
@FORMAT_OPTION
def list_campaigns(fmt: str) -> None:
    """Campaigns, newest first."""
    from sqlalchemy import select

    from plugins.analytical import campaigns
    from plugins.analytical.models import Campaign

    with open_crm().db.session() as session:
        query = select(Campaign).order_by(Campaign.id.desc())
        rows = [campaigns.campaign_as_dict(c) for c in session.scalars(query)]
    if fmt == "json":
        print_json(rows)
        return
    columns = ["id", "name", "status", "segment_id", "targets", "controls", "mailing_id"]
    print_table(columns, [[r[c] for c in columns] for r in rows])


@campaigns_group.command("create")
@click.option("--name", required=True, help="The campaign's name.")
@click.option("--segment", required=True, help="The saved segment (id or name).")
@click.option(
    "--control-percent",
    type=click.IntRange(0, 100),
    default=None,
    help="Share held out as control [default: setting control_percent].",
)
@click.option(
    "--response-days",
    type=click.IntRange(1, 3650),
    default=None,
    help="Days after freezing an order counts as a response [default: setting response_days].",
)
def create_campaign(
    name: str, segment: str, control_percent: int | None, response_days: int | None
) -> None:
    """Create a draft campaign on a saved segment."""
    from plugins.analytical import campaigns, segments

    crm = open_crm()
    with _failures(), crm.db.write() as session:
        found = segments.find_segment(session, segment)
        if found is None:
            raise click.BadParameter(f"no segment {segment!r}", param_hint="--segment")
        campaign = campaigns.create_campaign(
            session, crm, name, found.id, control_percent, response_days
        )
        message = f"campaign {campaign.id} {campaign.name!r} created (draft)"
    click.echo(message)


def _with_campaign(key: int, action: Callable[[Any, Any, Any], str]) -> None:
    """Run ``action(crm, session, campaign)`` in one transaction and print what it says."""
    from plugins.analytical import campaigns

    crm = open_crm()
    with _failures(), crm.db.write() as session:
        campaign = campaigns.find_campaign(session, key)
        if campaign is None:
            raise click.BadParameter(f"no campaign {key}", param_hint="CAMPAIGN")
        message = action(crm, session, campaign)
    click.echo(message)


@campaigns_group.command("freeze")
@click.argument("campaign", type=int)
def freeze_campaign(campaign: int) -> None:
    """Evaluate the segment now and freeze the list with its control group."""
    from plugins.analytical import campaigns

    def action(crm: Any, session: Any, found: Any) -> str:
        campaigns.freeze(session, crm, found)
        return f"campaign {found.id} frozen: {found.targets} targets, {found.controls} control"

    _with_campaign(campaign, action)


@campaigns_group.command("send")
@click.argument("campaign", type=int)
@click.option("--template", required=True, help="The mail template (id or name).")
def send_campaign(campaign: int, template: str) -> None:
    """Hand the targets to a new draft mailing (schedule it with ``crm mailings``)."""
    from plugins.analytical import campaigns

    def action(crm: Any, session: Any, found: Any) -> str:
        try:
            mailing = campaigns.send_to_mailing(crm, session, found, template)
        except Invalid as exc:
            raise click.BadParameter(str(exc), param_hint="--template") from None
        return f"campaign {found.id} handed to draft mailing {mailing.id}"

    _with_campaign(campaign, action)


@campaigns_group.command("results")
@click.argument("campaign", type=int)
@FORMAT_OPTION
def campaign_results(campaign: int, fmt: str) -> None:
    """Response of targets against control, uplift and its 95 % interval."""
    from plugins.analytical import campaigns

    crm = open_crm()
    with crm.db.session() as session:
        found = campaigns.find_campaign(session, campaign)
        if found is None:
            raise click.BadParameter(f"no campaign {campaign}", param_hint="CAMPAIGN")
        result = campaigns.results(session, crm, found)
    if result is None:
        raise click.ClickException(f"campaign {campaign} is not frozen yet: no results")
    data = result.as_dict()
    if fmt == "json":
        print_json(data)
        return
    rows = [
        [name, g["size"], g["responders"], _percent(g["rate"]), g["revenue_per_customer_minor"]]
        for name, g in (("target", data["target"]), ("control", data["control"]))
    ]
    print_table(["group", "customers", "responders", "rate", "revenue/customer"], rows)
    interval = (
        f" (95% CI {_percent(result.ci_low)} to {_percent(result.ci_high)})"
        if result.ci_low is not None
        else ""
    )
    click.echo(f"uplift {_percent(result.uplift)}{interval}")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"
