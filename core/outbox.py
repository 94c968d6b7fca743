"""At-most-once delivery of e-mails queued as database rows (an *outbox*).

A module that mails one message per row (a mailing's recipients, notifications) describes
which columns of its model play which role in an ``Outbox``; the methods here then run the
protocol, each in the caller's short transaction, so that no transaction stays open while the
SMTP server is talked to:

1. *claim* (``Outbox.claim``): ``UPDATE ... SET claimed_at = now, attempts = attempts + 1
   WHERE id = :id AND status = <queued> AND claimed_at IS NULL``. Only one worker's update
   matches; the others skip the row. The claim is the pair (``claimed_at``, ``attempts``):
   ``Claim.mine()`` is the condition that the row is still held by it.
2. *hand-over* (``Outbox.handover``): once the SMTP server accepted the envelope (MAIL, RCPT)
   and right before DATA, the hand-over column is set, on condition that the claim is still
   ours and the row still queued. From here the message may have reached the server.
3. *sent* (``Outbox.mark_sent``): after the server's 250 the row becomes ``sent``; what else
   being sent means (a timeline entry, a timestamp) is the caller's.

A failed attempt (``Outbox.settle_failure``) puts the row back in the queue (claim and
hand-over cleared, the error kept) when the refusal was temporary (4xx), until a maximum
number of attempts; an unreachable server does not count as an attempt. A 5xx makes it
``failed``. A connection lost during DATA (``"unknown"``) makes it ``failed`` with "outcome
unknown", never retried automatically. A claim older than a limit belongs to a worker that died
(``Outbox.release_abandoned``): without a hand-over the message was surely not sent and the row
is released for a retry (or ``failed`` once out of attempts); with one, nobody knows whether the
server took the message, so it becomes ``failed`` with "outcome unknown".

Guarantee: **at most once** per row. A rare lost mail, visible and re-queueable by an operator,
is preferred to a duplicate in someone's inbox.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.db import utcnow
from core.mail import DeliveryError

#: What became of a failed attempt (the name of the ``Tally`` counter it adds to).
Outcome = Literal["retrying", "failed", "unknown"]
#: Why a claim is considered abandoned, in the messages ``release_abandoned`` stores.
ABANDONED_WHY = "the worker that claimed it stopped"


class Tally(Protocol):
    """The counters a run's report keeps (``SendReport``, ``DeliveryReport``...)."""

    retrying: int
    failed: int
    unknown: int
    released: int


@dataclass(frozen=True)
class Claim:
    """One worker's hold on one row: the values it set in ``claimed_at`` and ``attempts``."""

    outbox: Outbox
    row_id: int
    claimed_at: dt.datetime
    attempts: int

    def mine(self) -> ColumnElement[bool]:
        """The condition that the row is still held by this claim."""
        box = self.outbox
        return (
            (box.column("id") == self.row_id)
            & (box.column(box.claimed_at) == self.claimed_at)
            & (box.column(box.attempts) == self.attempts)
        )


@dataclass(frozen=True)
class Outbox:
    """Which attributes of ``model`` play which role in the protocol (see the module doc).

    ``unknown_outcome`` is the error stored when the outcome is unknown, with a ``{why}``
    placeholder; ``stopped_while`` completes ``ABANDONED_WHY`` for a claim abandoned after its
    hand-over ("during sending").
    """

    model: type[Any]
    status: str
    queued: str
    claimed_at: str
    attempts: str
    handover_at: str
    error: str
    unknown_outcome: str
    stopped_while: str = "while sending"
    failed: str = "failed"
    sent: str = "sent"

    def column(self, name: str) -> InstrumentedAttribute[Any]:
        """The model's attribute ``name``."""
        attribute: InstrumentedAttribute[Any] = getattr(self.model, name)
        return attribute

    def free(self, row_id: int) -> ColumnElement[bool]:
        """The condition that row ``row_id`` is queued and claimed by nobody."""
        return (
            (self.column("id") == row_id)
            & (self.column(self.status) == self.queued)
            & self.column(self.claimed_at).is_(None)
        )

    def claim(self, session: Session, row_id: int, attempts: int) -> Claim | None:
        """Claim row ``row_id``, read with ``attempts`` attempts; ``None`` if it is not free."""
        claimed_at = utcnow()
        taken = session.execute(
            update(self.model)
            .where(self.free(row_id))
            .values(
                {
                    self.claimed_at: claimed_at,
                    self.attempts: self.column(self.attempts) + 1,
                }
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken != 1:
            return None
        return Claim(self, row_id, claimed_at, attempts + 1)

    def handover(self, session: Session, claim: Claim) -> bool:
        """Record that the message is being handed to the server, if the claim is still ours."""
        return (
            session.execute(
                update(self.model)
                .where(
                    claim.mine(),
                    self.column(self.status) == self.queued,
                    self.column(self.handover_at).is_(None),
                )
                .values({self.handover_at: utcnow()})
            ).rowcount
            == 1
        )

    def mark_sent(self, session: Session, claim: Claim, **values: Any) -> None:
        """The server accepted the message: ``sent``, error cleared, and ``values`` set."""
        session.execute(
            update(self.model)
            .where(claim.mine())
            .values({self.status: self.sent, self.error: None, **values})
        )

    def settle_failure(
        self,
        session: Session,
        claim: Claim,
        error: DeliveryError,
        max_attempts: int,
        tally: Tally | None = None,
    ) -> Outcome:
        """Record a failed attempt: back in the queue, ``failed``, or failed with unknown outcome.

        Returns what became of the row, also counted in ``tally`` when given.
        """
        retry: dict[str, Any] = {
            self.claimed_at: None,
            self.handover_at: None,
            self.error: str(error),
        }
        outcome: Outcome
        if error.kind == "unknown":
            values: dict[str, Any] = {
                self.status: self.failed,
                self.error: self.unknown_outcome.format(why=str(error)),
            }
            outcome = "unknown"
        elif error.kind == "unreachable":  # the server was down: not an attempt of this message
            values = {**retry, self.attempts: self.column(self.attempts) - 1}
            outcome = "retrying"
        elif error.kind == "rejected" or claim.attempts >= max_attempts:
            values = {**retry, self.status: self.failed}
            outcome = "failed"
        else:
            values = retry
            outcome = "retrying"
        if tally is not None:
            setattr(tally, outcome, getattr(tally, outcome) + 1)
        session.execute(update(self.model).where(claim.mine()).values(values))
        return outcome

    def release_abandoned(
        self,
        session: Session,
        claimed_before: dt.datetime,
        max_attempts: int,
        tally: Tally,
        *where: ColumnElement[bool],
    ) -> None:
        """Settle the queued rows (among ``where``) claimed before ``claimed_before``.

        Their worker died. Rows handed over become ``failed`` with an unknown outcome (counted
        ``unknown``); the others are released for a retry (``released``), or ``failed`` when
        they ran out of attempts.
        """
        stale = (self.column(self.status) == self.queued) & (
            self.column(self.claimed_at) < claimed_before
        )
        for condition in where:
            stale &= condition
        handover = self.column(self.handover_at)
        never_handed = stale & handover.is_(None)
        tally.unknown += session.execute(
            update(self.model)
            .where(stale & handover.is_not(None))
            .values(
                {
                    self.status: self.failed,
                    self.error: self.unknown_outcome.format(
                        why=f"{ABANDONED_WHY} {self.stopped_while}"
                    ),
                }
            )
        ).rowcount
        tally.failed += session.execute(
            update(self.model)
            .where(never_handed & (self.column(self.attempts) >= max_attempts))
            .values(
                {
                    self.status: self.failed,
                    self.claimed_at: None,
                    self.error: f"{ABANDONED_WHY}; too many attempts",
                }
            )
        ).rowcount
        tally.released += session.execute(
            update(self.model)
            .where(never_handed)
            .values({self.claimed_at: None, self.error: f"{ABANDONED_WHY} before sending; retried"})
        ).rowcount
