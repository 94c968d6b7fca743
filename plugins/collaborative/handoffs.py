"""Hand-offs: a record handed from one team to another, with a message and a deadline.

The receiving team accepts it (it becomes responsible: the customer's account team, or the
ticket's or opportunity's team and owner) or returns it with a reason; the creator may cancel
it while it waits. A record has at most one pending hand-off. While it waits, the receiving
team's members see the record (:mod:`plugins.collaborative.rules`).

Past the deadline a hand-off is overdue; ``crm collaborative escalate`` (cron) tells the
receiving team's lead and the creator once: each hand-off is claimed with one conditional
UPDATE of ``escalated_at``, so two runs at the same time never escalate it twice. A team
without a lead escalates to the creator only (the checklist asks every team for a lead).

Every step writes an event line on the record (a :class:`Message` of kind ``event``), which
the record's conversation panel shows as its history.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, not_, or_, select, update

from core import audit
from core import records as core_records
from core.db import utcnow
from core.errors import Conflict, Invalid, NotFoundError, StaleVersion
from core.i18n import N_
from core.models import Team
from plugins.collaborative import departments, followers, notify, teams
from plugins.collaborative import records as recs
from plugins.collaborative.config import settings
from plugins.collaborative.models import Handoff, Message

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.auth import SignedIn
    from core.records import RecordType
    from core.runtime import Crm

BOXES = ("incoming", "sent", "all")
MAX_REASON_LENGTH = 2_000
MANAGE = "collaborative.team:manage"
LIST_LIMIT = 200


class Forbidden(Exception):
    """The user may see the hand-off but not decide on it (not in the receiving team)."""


def handable(kind: RecordType) -> bool:
    """Whether records of ``kind`` can be handed to a team: customers, and types with a team."""
    return kind.name == "customer" or kind.team_column is not None


def current_team(session: Session, kind: RecordType, record_id: int) -> int | None:
    """The team responsible for the record now: the account team of a customer, else the
    record's team column."""
    if kind.name == "customer":
        return departments.account_team_of(session, record_id)
    if kind.team_column is None:
        return None
    return session.scalar(select(kind.column(kind.team_column)).where(kind.model.id == record_id))


def is_overdue(handoff: Handoff, now: dt.datetime | None = None) -> bool:
    """Whether the hand-off still waits after its deadline."""
    return handoff.status == "pending" and handoff.deadline < (now or utcnow())


def overdue_condition(now: dt.datetime) -> ColumnElement[bool]:
    """Hand-offs waiting past their deadline at ``now``."""
    return and_(Handoff.status == "pending", Handoff.deadline < now)


def _history(session: Session, handoff: Handoff, author_id: int | None, body: str) -> None:
    session.add(
        Message(
            record_type=handoff.record_type,
            record_id=handoff.record_id,
            customer_id=handoff.customer_id,
            author_id=author_id,
            kind="event",
            body=body,
        )
    )


def _team_label(session: Session, team_id: int | None) -> str:
    team = session.get(Team, team_id) if team_id is not None else None
    return team.label if team is not None else "—"


def _subject(
    crm: Crm,
    session: Session,
    handoff: Handoff,
    key: str,
    kind: str,
    label: str,
    actor_id: int | None,
    body: str = "",
) -> notify.Subject:
    record_kind = recs.kind_of(crm, handoff.record_type)
    title = recs.title_of(session, record_kind, handoff.record_id) or f"#{handoff.record_id}"
    return notify.Subject(
        key=f"handoff:{handoff.id}:{key}",
        kind=kind,
        label=label,
        title=title,
        body=body,
        url=record_kind.link(handoff.record_id),
        record_type=handoff.record_type,
        record_id=handoff.record_id,
        customer_id=handoff.customer_id,
        actor_id=actor_id,
    )


def _deadline(crm: Crm, deadline: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    if deadline is None:
        return now + dt.timedelta(hours=settings(crm)["handoff_deadline_hours"])
    if deadline.tzinfo is None or deadline.utcoffset() is None:
        raise Invalid({"deadline": "give a time zone (Z or +07:00)"})
    if deadline <= now:
        raise Invalid({"deadline": "must be in the future"})
    return deadline.astimezone(dt.UTC)


def _lock_record(session: Session, kind: RecordType, record_id: int) -> None:
    """Hold the record's row until commit, so two hand-offs of it cannot both be created
    (SQLite's write transactions are serialised already)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(kind.model.id).where(kind.model.id == record_id).with_for_update())


def pending_of(session: Session, record_type: str, record_id: int) -> Handoff | None:
    """The record's pending hand-off, if it has one."""
    return session.scalar(
        select(Handoff).where(
            Handoff.record_type == record_type,
            Handoff.record_id == record_id,
            Handoff.status == "pending",
        )
    )


def create(
    crm: Crm,
    session: Session,
    user: SignedIn,
    record_type: str,
    record_id: int,
    to_team_id: int,
    message: str,
    deadline: dt.datetime | None = None,
) -> Handoff:
    """Hand a record ``user`` may see to team ``to_team_id``; tell that team's members.

    ``Invalid`` for a type that cannot be handed, an unknown team, the record's own team, an
    empty message or a deadline not in the future; ``NotFoundError`` for a record the user
    may not see; ``Conflict`` when the record already waits in a hand-off.
    """
    kind = recs.require_visible(crm, session, user, record_type, record_id)
    if not handable(kind):
        raise Invalid({"record_type": f"records of type {record_type} cannot be handed over"})
    now = utcnow()
    text = (message or "").strip()
    errors: dict[str, str] = {}
    limit = settings(crm)["max_message_length"]
    if not text:
        errors["message"] = "say what the receiving team should know"
    elif len(text) > limit:
        errors["message"] = f"at most {limit} characters"
    try:
        due = _deadline(crm, deadline, now)
    except Invalid as exc:
        errors.update(exc.errors)
    _lock_record(session, kind, record_id)
    from_team = current_team(session, kind, record_id)
    if not isinstance(to_team_id, int) or session.get(Team, to_team_id) is None:
        errors["to_team_id"] = f"no team {to_team_id}"
    elif to_team_id == from_team:
        errors["to_team_id"] = "the record is already with this team"
    if errors:
        raise Invalid(errors)
    if pending_of(session, record_type, record_id) is not None:
        raise Conflict(f"{record_type} {record_id} already waits in a pending hand-off")
    handoff = Handoff(
        record_type=record_type,
        record_id=record_id,
        customer_id=recs.customer_of(session, kind, record_id),
        from_team_id=from_team if from_team is not None else user.team_id,
        to_team_id=to_team_id,
        created_by=user.id,
        message=text,
        deadline=due,
        status="pending",
        created_at=now,
    )
    session.add(handoff)
    session.flush()
    followers.follow(session, record_type, record_id, user.id, "handoff")
    _history(session, handoff, user.id, f"Handed to {_team_label(session, to_team_id)}: {text}")
    session.flush()
    subject = _subject(
        crm,
        session,
        handoff,
        "new",
        "handoff",
        N_("handed over to your team"),
        user.id,
        text,
    )
    notify.notify(crm, session, teams.member_ids(session, to_team_id), subject)
    return handoff


def visible_condition(crm: Crm, user: SignedIn) -> ColumnElement[bool] | None:
    """Hand-offs ``user`` may see: addressed to their teams, sent by them, or about a record
    they see."""
    about = recs.visible_condition(crm, user, Handoff.record_type, Handoff.record_id)
    if about is None:
        return None
    return or_(
        Handoff.to_team_id.in_(teams.teams_of(user.id)), Handoff.created_by == user.id, about
    )


def get(crm: Crm, session: Session, user: SignedIn, handoff_id: int) -> Handoff:
    """Hand-off ``handoff_id`` if ``user`` may see it; ``NotFoundError`` otherwise."""
    query = select(Handoff).where(Handoff.id == handoff_id)
    rule = visible_condition(crm, user)
    if rule is not None:
        query = query.where(rule)
    handoff = session.scalar(query)
    if handoff is None:
        raise NotFoundError(f"hand-off {handoff_id} not found")
    return handoff


def may_decide(session: Session, user: SignedIn, handoff: Handoff) -> bool:
    """Whether ``user`` may accept or return it: a member of the receiving team (its lead is
    one), or someone who manages teams."""
    if MANAGE in user.permissions:
        return True
    return departments.is_member(session, handoff.to_team_id, user.id)


def _pending(handoff: Handoff, version: int) -> None:
    # a decision made from an old version is answered with the current hand-off first, so the
    # client sees what changed (decided meanwhile, or edited)
    if version != handoff.version:
        raise StaleVersion(handoff)
    if handoff.status != "pending":
        raise Conflict(f"hand-off {handoff.id} is {handoff.status}, no longer pending")


def _decidable(
    crm: Crm, session: Session, user: SignedIn, handoff_id: int, version: int
) -> Handoff:
    handoff = get(crm, session, user, handoff_id)
    if not may_decide(session, user, handoff):
        raise Forbidden(f"only the receiving team decides on hand-off {handoff_id}")
    _pending(handoff, version)
    return handoff


def _take_over(crm: Crm, session: Session, user: SignedIn, handoff: Handoff) -> None:
    """Make the receiving team (and the acceptor) responsible for the record."""
    kind = recs.kind_of(crm, handoff.record_type)
    if kind.name == "customer":
        departments.set_account_team(session, handoff.record_id, handoff.to_team_id, user.id)
        return
    record = session.get(kind.model, handoff.record_id)
    if record is None:
        raise Conflict(f"{handoff.record_type} {handoff.record_id} no longer exists")
    setattr(record, kind.team_column, handoff.to_team_id)
    if kind.owner_column is not None:
        setattr(record, kind.owner_column, user.id)


def accept(crm: Crm, session: Session, user: SignedIn, handoff_id: int, version: int) -> Handoff:
    """Accept a pending hand-off for its receiving team; tell the creator.

    ``Forbidden`` outside the receiving team, ``Conflict`` when it is no longer pending,
    ``StaleVersion`` when ``version`` is not current.
    """
    handoff = _decidable(crm, session, user, handoff_id, version)
    _take_over(crm, session, user, handoff)
    handoff.status = "accepted"
    handoff.decided_by = user.id
    handoff.decided_at = utcnow()
    session.flush()
    followers.follow(session, handoff.record_type, handoff.record_id, user.id, "handoff")
    team = _team_label(session, handoff.to_team_id)
    _history(session, handoff, user.id, f"Hand-off accepted by {team}")
    session.flush()
    subject = _subject(
        crm, session, handoff, "accepted", "handoff", N_("accepted your hand-off"), user.id
    )
    notify.notify(crm, session, [handoff.created_by], subject)
    return handoff


def return_(
    crm: Crm, session: Session, user: SignedIn, handoff_id: int, version: int, reason: str
) -> Handoff:
    """Return a pending hand-off with a reason (required); tell the creator."""
    text = (reason or "").strip()
    if not text:
        raise Invalid({"reason": "say why the hand-off is returned"})
    if len(text) > MAX_REASON_LENGTH:
        raise Invalid({"reason": f"at most {MAX_REASON_LENGTH} characters"})
    handoff = _decidable(crm, session, user, handoff_id, version)
    handoff.status = "returned"
    handoff.reason = text
    handoff.decided_by = user.id
    handoff.decided_at = utcnow()
    session.flush()
    team = _team_label(session, handoff.to_team_id)
    _history(session, handoff, user.id, f"Hand-off returned by {team}: {text}")
    session.flush()
    subject = _subject(
        crm, session, handoff, "returned", "handoff", N_("returned your hand-off"), user.id, text
    )
    notify.notify(crm, session, [handoff.created_by], subject)
    return handoff


def cancel(crm: Crm, session: Session, user: SignedIn, handoff_id: int, version: int) -> Handoff:
    """Withdraw a pending hand-off; only its creator may. The receiving team's members who can
    still see the record are told."""
    handoff = get(crm, session, user, handoff_id)
    if handoff.created_by != user.id:
        raise Forbidden(f"only the creator cancels hand-off {handoff_id}")
    _pending(handoff, version)
    handoff.status = "cancelled"
    handoff.decided_by = user.id
    handoff.decided_at = utcnow()
    session.flush()
    _history(session, handoff, user.id, "Hand-off cancelled")
    session.flush()
    # members who only saw the record through the hand-off no longer see it, so are not told
    subject = _subject(
        crm,
        session,
        handoff,
        "cancelled",
        "handoff",
        N_("cancelled a hand-off to your team"),
        user.id,
    )
    notify.notify(crm, session, teams.member_ids(session, handoff.to_team_id), subject)
    return handoff


def _escalate_one(crm: Crm, handoff_id: int, now: dt.datetime) -> Handoff | None:
    """Claim one overdue hand-off and tell its lead and creator, in one transaction."""
    with crm.db.write() as session:
        claimed = session.execute(
            update(Handoff)
            .where(
                Handoff.id == handoff_id,
                Handoff.escalated_at.is_(None),
                overdue_condition(now),
            )
            .values(escalated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            return None
        handoff = session.get(Handoff, handoff_id)
        lead = teams.lead_of(session, handoff.to_team_id)
        team = _team_label(session, handoff.to_team_id)
        audit.record(
            session,
            "escalate",
            "collaborative_handoff",
            handoff.id,
            after={"escalated_at": now, "lead_id": lead},
        )
        _history(session, handoff, None, f"Hand-off to {team} overdue: escalated")
        if lead is not None:
            subject = _subject(
                crm,
                session,
                handoff,
                "escalated",
                "escalation",
                N_("hand-off to your team is overdue"),
                None,
                handoff.message,
            )
            notify.notify(crm, session, [lead], subject)
        subject = _subject(
            crm,
            session,
            handoff,
            "escalated",
            "escalation",
            N_("your hand-off is overdue"),
            None,
            handoff.message,
        )
        notify.notify(crm, session, [handoff.created_by], subject)
        return handoff


def escalate_overdue(crm: Crm, now: dt.datetime | None = None) -> list[Handoff]:
    """Escalate every hand-off overdue at ``now`` and not escalated yet; return them.

    Each is claimed with a conditional UPDATE in its own transaction: a concurrent run skips
    it, and a failure leaves it for the next run.
    """
    now = now or utcnow()
    with crm.db.session() as session:
        due = list(
            session.scalars(
                select(Handoff.id)
                .where(overdue_condition(now), Handoff.escalated_at.is_(None))
                .order_by(Handoff.deadline, Handoff.id)
            )
        )
    return [h for h in (_escalate_one(crm, hid, now) for hid in due) if h is not None]


def listing(
    crm: Crm,
    session: Session,
    user: SignedIn,
    *,
    box: str = "incoming",
    status: str | None = None,
    overdue: bool | None = None,
    record: tuple[str, int] | None = None,
    before_id: int | None = None,
    limit: int = LIST_LIMIT,
    now: dt.datetime | None = None,
) -> list[Handoff]:
    """Hand-offs ``user`` may see, newest first: ``incoming`` (to the user's teams), ``sent``
    (by the user) or ``all``; filtered by status, overdue now, and record."""
    if box not in BOXES:
        raise Invalid({"box": f"one of {', '.join(BOXES)}"})
    query = select(Handoff)
    rule = visible_condition(crm, user)
    if rule is not None:
        query = query.where(rule)
    if box == "incoming":
        query = query.where(Handoff.to_team_id.in_(teams.teams_of(user.id)))
    elif box == "sent":
        query = query.where(Handoff.created_by == user.id)
    if status is not None:
        query = query.where(Handoff.status == status)
    if overdue is not None:
        late = overdue_condition(now or utcnow())
        query = query.where(late if overdue else not_(late))
    if record is not None:
        query = query.where(Handoff.record_type == record[0], Handoff.record_id == record[1])
    if before_id is not None:
        query = query.where(Handoff.id < before_id)
    return list(session.scalars(query.order_by(Handoff.id.desc()).limit(limit)))


def describe(crm: Crm, session: Session, rows: list[Handoff]) -> dict[str, Any]:
    """What lists show besides the rows: team labels, record titles and links, user names."""
    from core.models import User

    labels = departments.team_labels(
        session, {r.to_team_id for r in rows} | {r.from_team_id for r in rows}
    )
    users = {r.created_by for r in rows} | {r.decided_by for r in rows}
    names = dict(session.execute(select(User.id, User.name).where(User.id.in_(users))).all())
    kinds = core_records.record_types(crm)
    refs = {(r.record_type, r.record_id) for r in rows if r.record_type in kinds}
    found = recs.titles_of(crm, session, refs)
    titles = {key: found.get(key, f"#{key[1]}") for key in refs}
    links = {key: kinds[key[0]].link(key[1]) for key in refs}
    return {"teams": labels, "names": names, "titles": titles, "links": links}
