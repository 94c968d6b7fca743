"""Cohorts, purchase rhythm and churn risk equal a plain-Python computation (SQLite and
PostgreSQL), and the churn rules follow the probability alive or the overdue rule."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import statistics
from fractions import Fraction

from sqlalchemy import insert, select

from plugins.analytical import behaviour
from plugins.analytical.models import Behaviour, ClvScore, Run
from plugins.operational.models import Order
from tests.plugins.analytical.helpers import add_customer

AS_OF = dt.date(2026, 6, 15)
RULES = behaviour.ChurnRules(overdue_percent=200, high_alive_percent=30, medium_alive_percent=60)
ICT = dt.timezone(dt.timedelta(hours=7))


def _customers(session, count: int) -> list[int]:
    return [add_customer(session, f"B{i}") for i in range(count)]


def _orders(session, orders: list[tuple[int, dt.datetime, str]]) -> None:
    now = dt.datetime.now(dt.UTC)
    session.execute(
        insert(Order),
        [
            {
                "ref": f"B-{n}",
                "customer_id": cid,
                "placed_at": placed,
                "total_minor": 100_000,
                "status": status,
                "currency": "VND",
                "created_at": now,
                "version": 1,
            }
            for n, (cid, placed, status) in enumerate(orders)
        ],
    )


def _generate(crm, customers: int = 160, seed: int = 11) -> list[tuple[int, dt.datetime, str]]:
    """Orders over 30 months: same-day repeats, times around midnight UTC at month ends
    (some written in UTC+7), cancelled and returned orders, orders after AS_OF."""
    rng = random.Random(seed)
    start = dt.date(2024, 1, 1)
    orders = []
    with crm.db.write() as session:
        for cid in _customers(session, customers):
            day = start + dt.timedelta(days=rng.randrange(0, 900))
            for _ in range(rng.choice((1, 1, 2, 3, 4, 6))):
                when = dt.datetime.combine(day, dt.time(rng.choice((0, 9, 23)), 30), tzinfo=dt.UTC)
                if rng.random() < 0.3:
                    when = when.astimezone(ICT)  # same instant, another zone
                status = rng.choices(("delivered", "cancelled", "returned"), (8, 1, 1))[0]
                orders.append((cid, when, status))
                if rng.random() < 0.25:  # a second order the same UTC day
                    orders.append((cid, when + dt.timedelta(minutes=20), "paid"))
                day += dt.timedelta(days=rng.choice((0, 1, 13, 29, 31, 45, 120)))
        _orders(session, orders)
    return orders


def _purchase_days(orders, as_of: dt.date) -> dict[int, list[dt.date]]:
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    days: dict[int, set[dt.date]] = {}
    for cid, placed, status in orders:
        if placed < end and status not in ("cancelled", "returned"):
            days.setdefault(cid, set()).add(placed.astimezone(dt.UTC).date())
    return {cid: sorted(d) for cid, d in days.items()}


def _reference_cohorts(days: dict[int, list[dt.date]], as_of: dt.date) -> dict:
    def months_between(a: dt.date, b: dt.date) -> int:
        return (b.year - a.year) * 12 + b.month - a.month

    members: dict[dt.date, list[int]] = {}
    for cid, ds in days.items():
        members.setdefault(ds[0].replace(day=1), []).append(cid)
    kept = sorted(members)[-24:]
    columns = min(24, months_between(kept[0], as_of) + 1)
    cohorts = []
    for cohort in kept:
        observed = min(columns, months_between(cohort, as_of) + 1)
        counts = [
            sum(
                1
                for cid in members[cohort]
                if any(months_between(cohort, d) == k for d in days[cid])
            )
            for k in range(observed)
        ]
        cohorts.append(
            {
                "month": cohort.strftime("%Y-%m"),
                "size": len(members[cohort]),
                "counts": counts + [None] * (columns - observed),
            }
        )
    return {"columns": columns, "cohorts": cohorts}


def _reference_risk(days_since: int, gaps: list[int], p_alive: float | None) -> str:
    if p_alive is not None:
        return "high" if p_alive < 0.30 else "medium" if p_alive < 0.60 else "low"
    if gaps:
        mean = Fraction(sum(gaps), len(gaps))
        return "high" if days_since > mean * 2 else "medium" if days_since > mean else "low"
    return "high" if days_since > 365 else "medium" if days_since > 180 else "low"


def _stored(session, run_id: int) -> dict[int, Behaviour]:
    return {
        b.customer_id: b
        for b in session.scalars(select(Behaviour).where(Behaviour.run_id == run_id))
    }


def test_cohorts_and_rhythm_equal_a_plain_python_computation(an_crm):
    orders = _generate(an_crm)
    days = _purchase_days(orders, AS_OF)
    with an_crm.db.write() as session:
        run = behaviour.refresh(session, AS_OF, RULES)
        run_id, summary = run.id, run.summary
    expected = _reference_cohorts(days, AS_OF)
    got = summary["cohorts"]
    assert got["columns"] == expected["columns"] == 24
    assert len(got["cohorts"]) == 24 and len(days) > 100
    for mine, want in zip(got["cohorts"], expected["cohorts"], strict=True):
        assert {k: mine[k] for k in want} == want
        for share, count in zip(mine["shares"], want["counts"], strict=True):
            assert share == (None if count is None else round(count / want["size"], 4))
    assert any(
        c is not None and 0 < c < row["size"] for row in got["cohorts"] for c in row["counts"][1:]
    )

    with an_crm.db.session() as session:
        stored = _stored(session, run_id)
    assert set(stored) == set(days)
    gaps = {}
    for cid, ds in days.items():
        row = stored[cid]
        steps = [(b - a).days for a, b in itertools.pairwise(ds)]
        assert (row.first_order, row.last_order) == (ds[0], ds[-1])
        assert row.days_since_last == (AS_OF - ds[-1]).days
        if steps:
            assert abs(row.mean_gap_days - statistics.fmean(steps)) < 1e-9
            gaps[cid] = statistics.fmean(steps)
        else:
            assert row.mean_gap_days is None
        assert row.churn_risk == _reference_risk(row.days_since_last, steps, None), cid
    counted = [o for o in orders if o[2] not in ("cancelled", "returned")]
    end = dt.datetime(2026, 6, 16, tzinfo=dt.UTC)
    assert sum(r.orders for r in stored.values()) == sum(1 for o in counted if o[1] < end)
    assert summary["gaps"]["median"] == round(statistics.median(gaps.values()), 1)
    assert summary["gaps"]["customers"] == len(gaps)
    assert summary["gaps"]["single"] == len(days) - len(gaps)
    bounds = [7, 14, 30, 60, 90, 180, 365, float("inf")]
    histogram = [0] * len(bounds)
    for gap in gaps.values():
        histogram[next(i for i, b in enumerate(bounds) if gap <= b)] += 1
    assert [b["customers"] for b in summary["gaps"]["histogram"]] == histogram
    assert sum(summary["risk"].values()) == len(days)


def test_hand_made_customer_around_midnight_and_month_end(an_crm):
    with an_crm.db.write() as session:
        (cid,) = _customers(session, 1)
        _orders(
            session,
            [
                # 2026-01-31 23:30 UTC, written as 2026-02-01 06:30 in UTC+7: January
                (cid, dt.datetime(2026, 2, 1, 6, 30, tzinfo=ICT), "paid"),
                (cid, dt.datetime(2026, 1, 31, 23, 50, tzinfo=dt.UTC), "paid"),  # same day
                (cid, dt.datetime(2026, 2, 1, 0, 10, tzinfo=dt.UTC), "paid"),  # February
                (cid, dt.datetime(2026, 3, 5, 0, 10, tzinfo=dt.UTC), "cancelled"),
                (cid, dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC), "paid"),
                (cid, dt.datetime(2026, 6, 16, 0, 0, tzinfo=dt.UTC), "paid"),  # after AS_OF
            ],
        )
        run = behaviour.refresh(session, AS_OF, RULES)
        row = _stored(session, run.id)[cid]
        summary = run.summary
    assert row.orders == 4 and row.first_order == dt.date(2026, 1, 31)
    assert row.last_order == dt.date(2026, 4, 1)
    assert row.mean_gap_days == (dt.date(2026, 4, 1) - dt.date(2026, 1, 31)).days / 2
    (cohort,) = summary["cohorts"]["cohorts"]
    assert cohort["month"] == "2026-01" and cohort["size"] == 1
    assert cohort["counts"] == [1, 1, 0, 1, 0, 0]  # Jan..Jun 2026, June observed up to AS_OF
    assert summary["cohorts"]["columns"] == 6


def _clv_run(session, as_of: dt.date, alive: dict[int, float]) -> int:
    run = Run(kind="clv", as_of=as_of, params={}, rows=len(alive))
    session.add(run)
    session.flush()
    session.execute(
        insert(ClvScore),
        [
            {
                "run_id": run.id,
                "customer_id": cid,
                "frequency": 1,
                "recency": 1.0,
                "t": 2.0,
                "monetary_minor": 0,
                "expected_purchases": 0.5,
                "probability_alive": p,
                "clv_minor": 0,
            }
            for cid, p in alive.items()
        ],
    )
    return run.id


def _buy(cid: int, *days_ago: int) -> list[tuple[int, dt.datetime, str]]:
    return [
        (cid, dt.datetime.combine(AS_OF - dt.timedelta(days=d), dt.time(12), tzinfo=dt.UTC), "paid")
        for d in days_ago
    ]


def test_churn_rules_without_a_clv_snapshot(an_crm):
    cases = {  # purchases (days before AS_OF) -> risk; the usual gap is 30 days
        (61, 91, 121): "high",  # 61 > 2 x 30
        (60, 90, 120): "medium",  # 60 is not above 2 x 30, but above 30
        (31, 61): "medium",
        (30, 60, 90): "low",  # not above the gap
        (366,): "high",  # single purchase: > 365
        (365,): "medium",
        (181,): "medium",
        (180,): "low",
    }
    with an_crm.db.write() as session:
        ids = _customers(session, len(cases))
        _orders(session, [o for cid, ago in zip(ids, cases, strict=True) for o in _buy(cid, *ago)])
        run = behaviour.refresh(session, AS_OF, RULES)
        stored = _stored(session, run.id)
        summary = run.summary
    for cid, (ago, risk) in zip(ids, cases.items(), strict=True):
        assert stored[cid].churn_risk == risk, ago
        assert stored[cid].probability_alive is None
    assert stored[ids[0]].churn_reason == "overdue=61/30.0"
    assert stored[ids[4]].churn_reason == "single=366"
    assert summary["risk"] == {"high": 2, "medium": 4, "low": 2}
    assert summary["basis"] == {"p_alive": 0, "overdue": 4, "single": 4}
    assert run.params["clv_run_id"] is None


def test_churn_rules_follow_the_latest_clv_snapshot(an_crm):
    with an_crm.db.write() as session:
        ids = _customers(session, 6)
        _orders(session, [o for cid in ids for o in _buy(cid, 10, 20)])  # low by rhythm
        _clv_run(session, AS_OF - dt.timedelta(days=30), dict.fromkeys(ids, 0.99))  # older
        _clv_run(session, AS_OF, dict(zip(ids[:5], (0.29, 0.30, 0.59, 0.60, 0.95), strict=True)))
        run = behaviour.refresh(session, AS_OF, behaviour.ChurnRules(200, 30, 60))
        stored = _stored(session, run.id)
    risks = [stored[cid].churn_risk for cid in ids]
    assert risks == ["high", "medium", "medium", "low", "low", "low"]
    assert [stored[cid].probability_alive for cid in ids] == [0.29, 0.30, 0.59, 0.60, 0.95, None]
    assert stored[ids[0]].churn_reason == "p_alive=0.29"
    assert stored[ids[5]].churn_reason.startswith("overdue=")  # no CLV row: the rhythm rule
    message = behaviour.reason_message(stored[ids[0]].churn_reason)
    assert "29 %" in str(message)


def test_refresh_step_uses_the_settings_and_replaces_a_run_of_the_same_date(an_crm):
    with an_crm.db.write() as session:
        (cid,) = _customers(session, 1)
        _orders(session, _buy(cid, 50, 70))  # gap 20: 50 > 2 x 20 is high with the defaults
    for _ in range(2):
        with an_crm.db.write() as session:
            behaviour.refresh_step(an_crm, session, AS_OF)
    with an_crm.db.session() as session:
        runs = list(session.scalars(select(Run).where(Run.kind == "behaviour")))
        assert len(runs) == 1 and runs[0].rows == 1
        assert _stored(session, runs[0].id)[cid].churn_risk == "high"
        assert runs[0].params["churn_overdue_percent"] == 200


def test_no_orders_at_all(an_crm):
    with an_crm.db.write() as session:
        run = behaviour.refresh(session, AS_OF, RULES)
        assert run.rows == 0
        assert run.summary["cohorts"] == {"columns": 0, "cohorts": []}
        assert run.summary["gaps"]["median"] is None
        assert run.summary["risk"] == {"high": 0, "medium": 0, "low": 0}


def test_reason_messages():
    assert "120 days" in str(behaviour.reason_message("overdue=120/30.5"))
    assert "30.5" in str(behaviour.reason_message("overdue=120/30.5"))
    assert "200 days" in str(behaviour.reason_message("single=200"))
    assert behaviour.reason_message("garbage") is None
    assert behaviour.reason_message("overdue=x/y") is None
