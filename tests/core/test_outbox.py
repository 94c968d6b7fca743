"""``core.outbox``: the at-most-once protocol on a table of its own (in-memory SQLite)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from core.db import UTCDateTime, utcnow
from core.mail import DeliveryError
from core.outbox import Outbox

UNKNOWN = "outcome unknown: {why}"


class _Base(DeclarativeBase):
    pass


class Row(_Base):
    __tablename__ = "outbox_row"

    id: Mapped[int] = mapped_column(primary_key=True)
    group: Mapped[int] = mapped_column(default=1)
    state: Mapped[str] = mapped_column(default="waiting")
    taken_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    tries: Mapped[int] = mapped_column(default=0)
    handed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    problem: Mapped[str | None]
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


BOX = Outbox(
    Row,
    status="state",
    queued="waiting",
    claimed_at="taken_at",
    attempts="tries",
    handover_at="handed_at",
    error="problem",
    unknown_outcome=UNKNOWN,
)


@dataclass
class Report:
    retrying: int = 0
    failed: int = 0
    unknown: int = 0
    released: int = 0


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Row(id=1), Row(id=2), Row(id=3, group=2)])
        session.commit()
        yield session


def _row(session: Session, row_id: int) -> Row:
    session.expire_all()
    return session.get(Row, row_id)  # type: ignore[return-value]


def test_one_claim_wins_and_guards_the_handover_and_sent(session):
    claim = BOX.claim(session, 1, 0)
    assert claim is not None and claim.attempts == 1
    assert BOX.claim(session, 1, 0) is None
    assert BOX.handover(session, claim) is True
    assert BOX.handover(session, claim) is False  # once only
    BOX.mark_sent(session, claim, done_at=utcnow())
    row = _row(session, 1)
    assert (row.state, row.tries, row.problem) == ("sent", 1, None)
    assert row.done_at is not None


def test_a_lost_claim_cannot_hand_over(session):
    claim = BOX.claim(session, 1, 0)
    assert claim is not None
    _row(session, 1).taken_at = utcnow() + dt.timedelta(seconds=5)
    session.flush()
    assert BOX.handover(session, claim) is False


@pytest.mark.parametrize(
    ("kind", "max_attempts", "outcome", "state", "tries"),
    [
        ("temporary", 5, "retrying", "waiting", 1),
        ("temporary", 1, "failed", "failed", 1),
        ("unreachable", 1, "retrying", "waiting", 0),
        ("rejected", 5, "failed", "failed", 1),
        ("unknown", 5, "unknown", "failed", 1),
    ],
)
def test_settling_a_failure(session, kind, max_attempts, outcome, state, tries):
    claim = BOX.claim(session, 1, 0)
    assert claim is not None
    report = Report()
    assert BOX.settle_failure(session, claim, DeliveryError(kind, "no"), max_attempts, report) == (
        outcome
    )
    assert getattr(report, outcome) == 1
    row = _row(session, 1)
    assert (row.state, row.tries) == (state, tries)
    if kind == "unknown":
        assert row.taken_at is not None and row.problem == "outcome unknown: no"
    else:
        assert row.taken_at is None and row.problem == "no"


def test_abandoned_claims(session):
    claims = {row_id: BOX.claim(session, row_id, 0) for row_id in (1, 2, 3)}
    assert BOX.handover(session, claims[1])  # type: ignore[arg-type]
    report = Report()
    BOX.release_abandoned(session, utcnow() + dt.timedelta(seconds=1), 5, report, Row.group == 1)
    assert (report.unknown, report.released, report.failed) == (1, 1, 0)
    assert _row(session, 1).state == "failed"
    assert "stopped while sending" in (_row(session, 1).problem or "")
    assert (_row(session, 2).state, _row(session, 2).taken_at) == ("waiting", None)
    assert _row(session, 3).taken_at is not None  # outside ``where``
    BOX.release_abandoned(session, utcnow() + dt.timedelta(seconds=1), 1, report)
    assert report.failed == 1 and _row(session, 3).state == "failed"
