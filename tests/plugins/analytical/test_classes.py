"""The four customer classes equal an independent computation, at the day boundaries."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import func, insert, select

from core import users
from core.customers.models import Customer
from plugins.analytical import classes
from plugins.analytical.models import CustomerClass, Run
from plugins.operational.models import Interaction, Opportunity, Order, Stage

AS_OF = dt.date(2026, 6, 30)
RULES = {"new_days": 10, "loyal_min_orders": 3, "loyal_days": 30, "potential_days": 7}
END = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
#: Days before AS_OF around every rule's boundary (-1: the day after, which must not count).
DAYS = (-1, 0, 1, 6, 7, 8, 9, 10, 11, 29, 30, 31, 200)
#: The first and the last instant of a day.
TIMES = (dt.time(0, 0), dt.time(23, 59, 59, 999_999))


def _at(days_ago: int, rng: random.Random) -> dt.datetime:
    day = AS_OF - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, rng.choice(TIMES), tzinfo=dt.UTC)


def _customers(session, count: int, rng: random.Random) -> list[tuple[int, bool]]:
    now = dt.datetime.now(dt.UTC)
    made = []
    for i in range(count):
        archived = rng.random() < 0.08
        cid = session.execute(
            insert(Customer).values(
                kind="person",
                display_name=f"C{i}",
                search_key=f"c{i}",
                archived=archived,
                created_at=now,
                updated_at=now,
                version=1,
            )
        ).inserted_primary_key[0]
        made.append((cid, archived))
    return made


def _stages(session) -> tuple[int, int]:
    """A team with its own pipeline and one on the default pipeline."""
    if session.scalar(select(func.count()).select_from(Stage).where(Stage.team_id.is_(None))) == 0:
        for seq, (name, kind) in enumerate((("new", "open"), ("won", "won"), ("lost", "lost"))):
            session.execute(
                insert(Stage).values(name=name, label=name, sequence=seq, kind=kind, team_id=None)
            )
    north = users.add_team(session, "north", "North").id
    south = users.add_team(session, "south", "South").id
    for seq, (name, kind) in enumerate((("lead", "open"), ("deal", "won"), ("nope", "lost"))):
        session.execute(
            insert(Stage).values(name=name, label=name, sequence=seq, kind=kind, team_id=north)
        )
    return north, south


def generate(crm, count: int = 160, seed: int = 11) -> dict:
    """Random customers, orders, opportunities and interactions around the boundaries."""
    rng = random.Random(seed)
    data: dict = {"orders": [], "opportunities": [], "interactions": []}
    now = dt.datetime.now(dt.UTC)
    with crm.db.write() as session:
        north, south = _stages(session)
        data["customers"] = _customers(session, count, rng)
        data["stages"] = [(s.team_id, s.name, s.kind) for s in session.scalars(select(Stage)).all()]
        for cid, _ in data["customers"]:
            for _ in range(rng.choice((0, 0, 1, 2, 3, 3, 4))):
                placed = _at(rng.choice(DAYS), rng)
                status = rng.choices(("delivered", "cancelled", "returned"), (8, 1, 1))[0]
                data["orders"].append((cid, placed, status))
            for _ in range(rng.choice((0, 0, 0, 1, 2))):
                team = rng.choice((None, north, south))
                stage = rng.choice(("new", "won", "lost", "lead", "deal", "nope"))
                created = _at(rng.choice((-1, 0, 5, 40)), rng)
                closed = rng.choice((None, None, _at(3, rng), _at(-1, rng), END))
                data["opportunities"].append((cid, team, stage, created, closed))
            for _ in range(rng.choice((0, 0, 1, 2))):
                direction = rng.choice(("inbound", "outbound", "internal"))
                data["interactions"].append((cid, direction, _at(rng.choice(DAYS), rng)))
        session.execute(
            insert(Order),
            [
                {
                    "ref": f"O{n}",
                    "customer_id": cid,
                    "placed_at": placed,
                    "status": status,
                    "currency": "VND",
                    "total_minor": 100_000,
                    "created_at": now,
                    "version": 1,
                }
                for n, (cid, placed, status) in enumerate(data["orders"])
            ],
        )
        session.execute(
            insert(Opportunity),
            [
                {
                    "customer_id": cid,
                    "title": "Deal",
                    "currency": "VND",
                    "team_id": team,
                    "stage": stage,
                    "created_at": created,
                    "updated_at": created,
                    "closed_at": closed,
                    "version": 1,
                }
                for cid, team, stage, created, closed in data["opportunities"]
            ],
        )
        session.execute(
            insert(Interaction),
            [
                {
                    "customer_id": cid,
                    "kind": "call",
                    "channel": "phone",
                    "direction": direction,
                    "subject": "Call",
                    "occurred_at": at,
                    "created_at": now,
                }
                for cid, direction, at in data["interactions"]
            ],
        )
    return data


def _is_open(data: dict, team: int | None, stage: str, created, closed) -> bool:
    """Open at the end of AS_OF, the team's own pipeline first, the default one otherwise."""
    if created >= END:
        return False
    if closed is not None:
        return closed >= END
    own = [(name, kind) for t, name, kind in data["stages"] if t == team and team is not None]
    pipeline = own or [(name, kind) for t, name, kind in data["stages"] if t is None]
    return any(name == stage and kind == "open" for name, kind in pipeline)


def reference(data: dict, rules: dict) -> dict[int, tuple[str, str]]:
    """Every rule written out in Python: {customer: (class, reason)}."""
    expected = {}
    for cid, archived in data["customers"]:
        if archived:
            continue
        placed = sorted(
            p
            for c, p, status in data["orders"]
            if c == cid and p < END and status not in ("cancelled", "returned")
        )
        ages = [(AS_OF - p.date()).days for p in placed]
        opens = sum(1 for c, *rest in data["opportunities"] if c == cid and _is_open(data, *rest))
        inbound = [
            (AS_OF - at.date()).days
            for c, direction, at in data["interactions"]
            if c == cid and direction == "inbound" and at < END
        ]
        inbound = [age for age in inbound if age < rules["potential_days"]]
        if placed and ages[0] < rules["new_days"]:
            expected[cid] = ("new", f"first_days={ages[0]};orders={len(placed)}")
        elif len(placed) >= rules["loyal_min_orders"] and ages[-1] < rules["loyal_days"]:
            expected[cid] = ("loyal", f"orders={len(placed)};last_days={ages[-1]}")
        elif opens:
            expected[cid] = ("potential", f"opportunities={opens}")
        elif inbound:
            expected[cid] = ("potential", f"inbound_days={min(inbound)}")
        elif placed and ages[-1] < rules["loyal_days"]:
            expected[cid] = ("potential", f"orders={len(placed)};last_days={ages[-1]}")
        elif placed:
            expected[cid] = ("unaware", f"orders={len(placed)};last_days={ages[-1]}")
        else:
            expected[cid] = ("unaware", "orders=0")
    return expected


def _stored(crm, run_id: int) -> dict[int, tuple[str, str]]:
    with crm.db.session() as session:
        rows = session.execute(
            select(CustomerClass.customer_id, CustomerClass.klass, CustomerClass.reason).where(
                CustomerClass.run_id == run_id
            )
        )
        return {cid: (klass, reason) for cid, klass, reason in rows}


def test_classes_equal_an_independent_computation_at_the_boundaries(an_crm):
    data = generate(an_crm)
    expected = reference(data, RULES)
    with an_crm.db.write() as session:
        run = classes.refresh(session, AS_OF, RULES)
        run_id, summary, rows = run.id, run.summary, run.rows
    got = _stored(an_crm, run_id)
    assert got == expected
    assert rows == len(expected) and sum(summary["classes"].values()) == len(expected)
    for name in classes.CLASSES:  # every class and every kind of reason really occurs
        assert summary["classes"][name] == sum(1 for k, _ in expected.values() if k == name) > 0
    reasons = {reason.split("=")[0] for _, reason in expected.values()}
    assert reasons == {"first_days", "orders", "opportunities", "inbound_days"}


def test_other_rules_give_other_classes_and_a_rerun_replaces_the_run(an_crm):
    data = generate(an_crm, count=80, seed=4)
    rules = {"new_days": 1, "loyal_min_orders": 1, "loyal_days": 8, "potential_days": 1}
    with an_crm.db.write() as session:
        classes.refresh(session, AS_OF, RULES)
    with an_crm.db.write() as session:
        run_id = classes.refresh(session, AS_OF, rules).id
    expected = reference(data, rules)
    assert _stored(an_crm, run_id) == expected
    assert expected != reference(data, RULES)
    with an_crm.db.session() as session:  # the same date: the first run and its rows are gone
        assert session.scalar(select(func.count()).select_from(Run)) == 1
        assert session.scalar(select(func.count()).select_from(CustomerClass)) == len(expected)


def test_refresh_step_reads_the_module_settings(an_crm):
    data = generate(an_crm, count=40, seed=8)
    with an_crm.db.write() as session:
        run = classes.refresh_step(an_crm, session, AS_OF)
        run_id, params = run.id, dict(run.params)
    defaults = {"new_days": 90, "loyal_min_orders": 3, "loyal_days": 365, "potential_days": 90}
    assert params == defaults
    assert _stored(an_crm, run_id) == reference(data, defaults)


def test_missing_rules_are_named():
    with pytest.raises(ValueError, match="potential_days"):
        classes.refresh(None, AS_OF, {"new_days": 1, "loyal_min_orders": 1, "loyal_days": 1})


def test_reasons_parse():
    assert classes.parse_reason("orders=3;last_days=12") == {"orders": 3, "last_days": 12}
    assert classes.parse_reason("junk;x=;y=2") == {"y": 2}
    assert classes.parse_reason(None) == {}
