"""Demo data of the collaborative module: departments with leads, account teams for every
customer, notes and comments with mentions, hand-offs (one overdue), partners with contacts.

Written through the module's services, so the demo also has followers and notifications."""

from __future__ import annotations

import datetime as dt
import random
from typing import TYPE_CHECKING

from sqlalchemy import insert, select

from core.db import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.runtime import Crm

#: name, label, kind, lead, members (e-mail, role in the team)
DEPARTMENTS = (
    (
        "hanoi",
        "Hà Nội",
        "sales",
        "manager@demo.example",
        (("sales1@demo.example", "account manager"), ("sales2@demo.example", "account manager")),
    ),
    (
        "care",
        "Chăm sóc khách hàng",
        "service",
        "service@demo.example",
        (("service@demo.example", "agent"),),
    ),
    (
        "marketing",
        "Marketing",
        "marketing",
        "marketing@demo.example",
        (("marketing@demo.example", "campaign owner"),),
    ),
)


def _users(session: Session) -> dict[str, int]:
    from core.models import User

    rows = session.execute(select(User.email, User.id).where(User.email.like("%@demo.example")))
    return dict(rows.all())


def _departments(session: Session, people: dict[str, int]) -> dict[str, int]:
    from core import users
    from core.models import Team, User
    from plugins.collaborative.models import Member, TeamProfile

    teams: dict[str, int] = {}
    for name, label, kind, lead, members in DEPARTMENTS:
        team = session.scalar(select(Team).where(Team.name == name)) or users.add_team(
            session, name, label
        )
        session.flush()
        teams[name] = team.id
        session.add(TeamProfile(team_id=team.id, kind=kind, lead_id=people.get(lead)))
        for email, role in members:
            if email in people:
                session.add(Member(team_id=team.id, user_id=people[email], role=role))
                user = session.get(User, people[email])
                if user.team_id is None:
                    user.team_id = team.id
    session.flush()
    return teams


def _account_teams(session: Session, teams: dict[str, int]) -> int:
    """Every customer's account team: its owner's team, else the sales team."""
    from core.customers.models import Customer
    from core.models import User
    from plugins.collaborative.models import AccountTeam

    rows = session.execute(
        select(Customer.id, User.team_id).outerjoin(User, User.id == Customer.owner_id)
    ).all()
    values = [
        {"customer_id": cid, "team_id": team or teams["hanoi"], "assigned_at": utcnow()}
        for cid, team in rows
    ]
    if values:
        session.execute(insert(AccountTeam), values)
    return len(values)


def load(crm: Crm, seed: int) -> str:
    """Create the demo records unless they exist; returns what was loaded."""
    from plugins.collaborative.models import TeamProfile

    rng = random.Random(seed)
    with crm.db.write() as session:
        if session.scalar(select(TeamProfile.team_id).limit(1)) is not None:
            return "already loaded"
        people = _users(session)
        if not people:
            return "no demo staff: run the core's demo first"
        teams = _departments(session, people)
        accounts = _account_teams(session, teams)
    extra = _conversations(crm, rng, people, teams)
    return f"{len(teams)} departments, {accounts} account teams, {extra}"


def _conversations(
    crm: Crm, rng: random.Random, people: dict[str, int], teams: dict[str, int]
) -> str:
    """Comments with mentions, notes, replies and hand-offs on customers of the sales team."""
    from core import auth
    from core.customers.models import Customer
    from plugins.collaborative import handoffs, messages
    from plugins.collaborative.models import Handoff

    emails = ("sales1", "manager", "service", "marketing")
    with crm.db.engine.connect() as conn:
        seller, manager, agent, marketer = (
            auth.signed_in_user(conn, people[f"{name}@demo.example"]) for name in emails
        )
    agent_token = messages.token_for("user", agent.id, agent.name)
    care_token = messages.token_for("team", teams["care"], "Chăm sóc khách hàng")
    posted = handed = 0
    with crm.db.write() as session:
        owned = list(
            session.scalars(
                select(Customer.id)
                .where(Customer.owner_id == seller.id)
                .order_by(Customer.id)
                .limit(12)
            )
        )
        for customer_id in rng.sample(owned, min(6, len(owned))):
            first = messages.post(
                crm,
                session,
                seller,
                "customer",
                customer_id,
                f"{agent_token} khách hỏi về bảo hành đơn hàng gần nhất, anh gọi lại giúp em nhé."
                f" Cả {care_token} lưu ý.",
            ).message
            messages.post(
                crm,
                session,
                agent,
                "customer",
                customer_id,
                "Đã gọi, khách hài lòng với phương án đổi hàng.",
                parent_id=first.id,
            )
            messages.post(
                crm,
                session,
                manager,
                "customer",
                customer_id,
                "Khách hàng thân thiết: ưu tiên giao trong 24 giờ.",
                kind="note",
            )
            posted += 3
        if owned:
            messages.post(
                crm,
                session,
                marketer,
                "customer",
                owned[0],
                "مشتری به کمپین تت علاقه دارد؛ لطفاً در فهرست کمپین بعدی قرار گیرد.",
                kind="note",
            )
            posted += 1
        for customer_id, late in zip(owned[-2:], (False, True), strict=False):
            handoff = handoffs.create(
                crm,
                session,
                seller,
                "customer",
                customer_id,
                teams["care"],
                "Khách cần hỗ trợ lắp đặt sau bán hàng; nhờ đội chăm sóc nhận giúp.",
            )
            if late:  # one waits past its deadline, for the overdue flag and escalation
                session.flush()
                session.get(Handoff, handoff.id).deadline = utcnow() - dt.timedelta(hours=3)
            handed += 1
    return f"{posted} notes and comments, {handed} hand-offs"
