"""Records a fresh install starts with: the default pipeline, lost reasons and SLA policies."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugins.operational.models import LostReason, SlaPolicy, Stage

DEFAULT_STAGES = (
    ("new", "New", 10, "open"),
    ("qualified", "Qualified", 25, "open"),
    ("proposal", "Proposal", 50, "open"),
    ("negotiation", "Negotiation", 75, "open"),
    ("won", "Won", 100, "won"),
    ("lost", "Lost", 0, "lost"),
)
DEFAULT_LOST_REASONS = (
    ("price", "Price too high"),
    ("competitor", "Chose a competitor"),
    ("no_budget", "No budget"),
    ("no_response", "No response"),
    ("timing", "Not the right time"),
)
#: priority -> (first response, resolution), in minutes
DEFAULT_SLA = {
    "urgent": (30, 4 * 60),
    "high": (2 * 60, 24 * 60),
    "normal": (8 * 60, 3 * 24 * 60),
    "low": (24 * 60, 7 * 24 * 60),
}


def install(session: Session) -> None:
    """Add the defaults that are not there yet (idempotent)."""
    if session.scalar(select(Stage.id).where(Stage.team_id.is_(None)).limit(1)) is None:
        for sequence, (name, label, probability, kind) in enumerate(DEFAULT_STAGES, 1):
            session.add(
                Stage(
                    name=name,
                    label=label,
                    sequence=sequence * 10,
                    probability=probability,
                    kind=kind,
                )
            )
    known = set(session.scalars(select(LostReason.name)))
    session.add_all(
        LostReason(name=name, label=label)
        for name, label in DEFAULT_LOST_REASONS
        if name not in known
    )
    policies = set(session.scalars(select(SlaPolicy.priority)))
    session.add_all(
        SlaPolicy(priority=p, first_response_minutes=f, resolution_minutes=r)
        for p, (f, r) in DEFAULT_SLA.items()
        if p not in policies
    )
    session.flush()
