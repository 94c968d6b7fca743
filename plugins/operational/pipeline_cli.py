"""``crm pipeline``: the stages of each team's pipeline, and the lost reasons."""

from __future__ import annotations

import click

from core.commands import FORMAT_OPTION, open_crm, print_json, print_table


@click.group()
def pipeline() -> None:
    """Pipeline stages (per team) and lost reasons."""


def _team_id(session, team: str | None) -> int | None:
    from core import users

    return users.get_team(session, team).id if team else None


@pipeline.command("stages")
@click.option("--team", default=None, help="A team's pipeline (default: the default pipeline).")
@FORMAT_OPTION
def list_stages(team: str | None, fmt: str) -> None:
    """List the stages of a pipeline, in order."""
    from plugins.operational import pipeline as service

    crm = open_crm()
    try:
        with crm.db.session() as session:
            rows = [
                {"name": s.name, "label": s.label, "probability": s.probability, "kind": s.kind}
                for s in service.stages(session, _team_id(session, team))
            ]
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if fmt == "json":
        print_json(rows)
        return
    print_table(["stage", "label", "probability %", "kind"], [list(r.values()) for r in rows])


@pipeline.command("set-stages")
@click.argument("stages", nargs=-1, required=True)
@click.option("--team", default=None, help="The team whose pipeline to set (default: the default).")
def set_stages(stages: tuple[str, ...], team: str | None) -> None:
    """Replace a pipeline's stages, in order; each STAGE is NAME:LABEL:PROBABILITY[:KIND].

    KIND is open (the default), won or lost, e.g.
    ``new:Mới:10 demo:Demo:40 won:Thắng:100:won lost:Thua:0:lost``.
    """
    from core import audit
    from core.modules import cli_actor
    from plugins.operational import pipeline as service

    specs = []
    for stage in stages:
        parts = stage.split(":")
        if len(parts) not in (3, 4) or not parts[2].isdigit():
            raise click.ClickException(f"{stage!r}: write NAME:LABEL:PROBABILITY[:KIND]")
        specs.append((parts[0], parts[1], int(parts[2]), parts[3] if len(parts) == 4 else "open"))
    crm = open_crm()
    try:
        with crm.db.write() as session, audit.acting_as(cli_actor()):
            team_id = _team_id(session, team)
            service.set_stages(session, team_id, specs)
            audit.record(
                session,
                "update",
                "operational.pipeline",
                team_id,
                after={"stages": [s[0] for s in specs]},
            )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Pipeline {team or 'default'}: {' → '.join(s[0] for s in specs)}")


@pipeline.command("add-lost-reason")
@click.argument("name")
@click.argument("label")
def add_lost_reason(name: str, label: str) -> None:
    """Add a reason deals are lost (NAME is a short key, LABEL what people see)."""
    from sqlalchemy import select

    from plugins.operational.models import LostReason

    crm = open_crm()
    with crm.db.write() as session:
        if session.scalar(select(LostReason.id).where(LostReason.name == name)) is not None:
            raise click.ClickException(f"lost reason {name!r} exists already")
        session.add(LostReason(name=name, label=label))
    click.echo(f"Added lost reason {name}")


def commands() -> list[click.Command]:
    """The command groups this feature adds to ``crm``."""
    return [pipeline]
