"""The sales pipeline: stages per team, opportunities moving through them, won and lost.

Each team may have its own stages; a team without any uses the default pipeline (the stages
with no team). An opportunity's probability follows its stage unless someone set it by hand.
Every change is audited by the model's audit mixin (who, when, before and after).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from core.db import utcnow
from core.i18n import N_
from core.models import Team, User
from plugins.operational import collaboration, webhooks
from plugins.operational.models import LostReason, Opportunity, Stage

if TYPE_CHECKING:
    from core.runtime import Crm

#: What closing a deal in a stage of each kind announces: the verb and its label.
CLOSED = {"won": ("won", N_("Deal won")), "lost": ("lost", N_("Deal lost"))}


class PipelineError(ValueError):
    """A change the pipeline does not allow; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def stages(session: Session, team_id: int | None) -> list[Stage]:
    """The stages of ``team_id``'s pipeline, in order (the default pipeline as a fallback)."""
    if team_id is not None:
        own = list(
            session.scalars(select(Stage).where(Stage.team_id == team_id).order_by(Stage.sequence))
        )
        if own:
            return own
    return list(
        session.scalars(select(Stage).where(Stage.team_id.is_(None)).order_by(Stage.sequence))
    )


def in_stage_kind(kind: str) -> ColumnElement[bool]:
    """SQL condition on ``Opportunity``: its stage is of ``kind`` (open, won, lost) in its
    team's pipeline, or in the default pipeline when the team has no stages of its own (as
    :func:`stages` resolves it)."""
    stage, own = aliased(Stage), aliased(Stage)
    team_has_stages = exists().where(own.team_id == Opportunity.team_id).correlate(Opportunity)
    return (
        exists()
        .where(
            stage.name == Opportunity.stage,
            stage.kind == kind,
            or_(
                stage.team_id == Opportunity.team_id,
                and_(stage.team_id.is_(None), ~team_has_stages),
            ),
        )
        .correlate(Opportunity)
    )


def in_open_stage() -> ColumnElement[bool]:
    """SQL condition on ``Opportunity``: its stage is open (see :func:`in_stage_kind`)."""
    return in_stage_kind("open")


def stage_named(session: Session, team_id: int | None, name: str) -> Stage:
    """The stage ``name`` of the team's pipeline; ``PipelineError`` listing the valid ones."""
    found = stages(session, team_id)
    for stage in found:
        if stage.name == name:
            return stage
    raise PipelineError("stage", f"stage must be one of {', '.join(s.name for s in found)}")


def all_stage_choices(session: Session) -> list[tuple[str, str]]:
    """Every stage name with its label, in pipeline order, across teams (for filters)."""
    seen: dict[str, str] = {}
    for stage in session.scalars(select(Stage).order_by(Stage.sequence, Stage.id)):
        seen.setdefault(stage.name, stage.label)
    return list(seen.items())


def lost_reasons(session: Session) -> list[tuple[str, str]]:
    """The agreed lost reasons as (id, label)."""
    return [
        (str(r.id), r.label) for r in session.scalars(select(LostReason).order_by(LostReason.label))
    ]


def _check_references(session: Session, values: dict[str, Any]) -> None:
    """``PipelineError`` naming an owner, team or lost reason given that does not exist."""
    owner_id = values.get("owner_id")
    if owner_id is not None:
        owner = session.get(User, owner_id)
        if owner is None or not owner.is_active:
            raise PipelineError("owner_id", f"no active user {owner_id}")
    if values.get("team_id") is not None and session.get(Team, values["team_id"]) is None:
        raise PipelineError("team_id", f"no team {values['team_id']}")
    reason_id = values.get("lost_reason_id")
    if reason_id is not None and session.get(LostReason, reason_id) is None:
        raise PipelineError("lost_reason_id", f"no lost reason {reason_id}")


def create(session: Session, values: dict[str, Any], default_currency: str) -> Opportunity:
    """Open an opportunity; its probability comes from its stage unless given."""
    _check_references(session, values)
    team_id = values.get("team_id")
    stage = stage_named(session, team_id, values.get("stage") or stages(session, team_id)[0].name)
    if stage.kind != "open":
        raise PipelineError("stage", "a new opportunity starts in an open stage")
    opportunity = Opportunity(
        customer_id=values["customer_id"],
        title=values["title"],
        expected_revenue_minor=values.get("expected_revenue_minor") or 0,
        currency=values.get("currency") or default_currency,
        expected_close=values.get("expected_close"),
        owner_id=values.get("owner_id"),
        team_id=team_id,
        stage=stage.name,
    )
    _set_probability(opportunity, stage, values.get("probability"))
    session.add(opportunity)
    session.flush()
    return opportunity


def _set_probability(opportunity: Opportunity, stage: Stage, given: int | None) -> None:
    if given is not None:
        if not 0 <= given <= 100:
            raise PipelineError("probability", "probability is a percentage from 0 to 100")
        opportunity.probability = given
        opportunity.probability_overridden = given != stage.probability
    elif not opportunity.probability_overridden or stage.kind != "open":
        opportunity.probability = stage.probability
        opportunity.probability_overridden = False


def update(
    session: Session,
    opportunity: Opportunity,
    values: dict[str, Any],
    *,
    crm: Crm | None = None,
    actor_id: int | None = None,
) -> None:
    """Change fields and move stages; won and lost close it (lost needs a reason).

    Given ``crm``, a move into a won or lost stage is announced (``record_event``) once the
    transaction commits and published as the ``deal.won`` or ``deal.lost`` webhook event.
    """
    _check_references(session, values)
    team_id = values.get("team_id", opportunity.team_id)
    stage_name = values.get("stage") or opportunity.stage
    stage = stage_named(session, team_id, stage_name)
    for name in ("title", "customer_id", "expected_revenue_minor", "currency", "expected_close"):
        if name in values and values[name] is not None:
            setattr(opportunity, name, values[name])
    for name in ("owner_id", "team_id", "expected_close"):
        if name in values:
            setattr(opportunity, name, values[name])
    if "lost_reason_id" in values:
        opportunity.lost_reason_id = values["lost_reason_id"]
    if stage.kind == "lost" and opportunity.lost_reason_id is None:
        raise PipelineError("lost_reason_id", "say why the opportunity was lost")
    if stage.kind != "lost":
        opportunity.lost_reason_id = None
    moved = stage.name != opportunity.stage
    opportunity.stage = stage.name
    if moved and stage.kind != "open" and "probability" not in values:
        opportunity.probability_overridden = False
    _set_probability(opportunity, stage, values.get("probability"))
    opportunity.closed_at = (opportunity.closed_at or utcnow()) if stage.kind != "open" else None
    session.flush()
    if crm is not None and moved and stage.kind in CLOSED:
        verb, label = CLOSED[stage.kind]
        collaboration.announce(
            session, crm, collaboration.OPPORTUNITY, opportunity, verb, label, actor_id=actor_id
        )
        event = webhooks.DEAL_WON if stage.kind == "won" else webhooks.DEAL_LOST
        webhooks.publish_deal(session, crm, event, opportunity, actor_id)


def weighted_minor(opportunity: Opportunity) -> int:
    """Expected revenue times probability, in minor units (rounded half up)."""
    return (opportunity.expected_revenue_minor * opportunity.probability + 50) // 100


def is_overdue(opportunity: Opportunity, today: dt.date) -> bool:
    """An open opportunity past its expected close date."""
    return (
        opportunity.closed_at is None
        and opportunity.expected_close is not None
        and opportunity.expected_close < today
    )


def set_stages(
    session: Session, team_id: int | None, specs: list[tuple[str, str, int, str]]
) -> None:
    """Replace the stages of ``team_id``'s pipeline (``None``: the default pipeline).

    ``specs`` are ``(name, label, probability, kind)`` in order; the pipeline needs at least one
    open, one won and one lost stage. Open opportunities of the team in a stage that goes away
    are refused: move them first.
    """
    from sqlalchemy import delete

    names = [name for name, *_ in specs]
    if len(set(names)) != len(names):
        raise PipelineError("stages", "a stage name appears twice")
    kinds = {kind for *_, kind in specs}
    for kind in ("open", "won", "lost"):
        if kind not in kinds:
            raise PipelineError("stages", f"a pipeline needs at least one {kind} stage")
    for name, label, probability, kind in specs:
        if kind not in ("open", "won", "lost"):
            raise PipelineError("stages", f"stage {name}: kind must be open, won or lost")
        if not 0 <= probability <= 100:
            raise PipelineError("stages", f"stage {name}: probability must be 0 to 100")
        if not name or not name.replace("_", "").isalnum() or not label:
            raise PipelineError("stages", f"stage {name!r}: give a short name and a label")
    stranded = session.scalar(
        select(Opportunity.id)
        .where(
            Opportunity.team_id.is_(team_id) if team_id is None else Opportunity.team_id == team_id,
            Opportunity.closed_at.is_(None),
            Opportunity.stage.not_in(names),
        )
        .limit(1)
    )
    if stranded is not None:
        raise PipelineError(
            "stages", f"open opportunity {stranded} is in a stage that would go away; move it first"
        )
    condition = Stage.team_id.is_(None) if team_id is None else Stage.team_id == team_id
    session.execute(delete(Stage).where(condition))
    for sequence, (name, label, probability, kind) in enumerate(specs, 1):
        session.add(
            Stage(
                team_id=team_id,
                name=name,
                label=label,
                sequence=sequence * 10,
                probability=probability,
                kind=kind,
            )
        )
    session.flush()
