"""Pipeline forecast against a plain-Python reference; the revenue model beats the naive
seasonal forecast on a seasonal series and falls back with a short history."""

from __future__ import annotations

import datetime as dt
import math
import random
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import insert, select

from core import users
from core.customers.models import Customer
from plugins.analytical import forecast
from plugins.analytical.models import Run
from plugins.operational import pipeline
from plugins.operational.defaults import DEFAULT_STAGES
from plugins.operational.models import Opportunity, Order

AS_OF = dt.date(2026, 6, 15)
TEAM_STAGES = [
    ("new", "New", 10, "open"),
    ("closing", "Closing", 80, "open"),
    ("proposal", "Signed", 100, "won"),  # same name as a default open stage, but won here
    ("dead", "Dead", 0, "lost"),
]


def _customer(session) -> int:
    now = dt.datetime.now(dt.UTC)
    return session.execute(
        insert(Customer).values(
            kind="person",
            display_name="F",
            search_key="f",
            archived=False,
            created_at=now,
            updated_at=now,
            version=1,
        )
    ).inserted_primary_key[0]


def _opportunities(crm, count: int = 300, seed: int = 4) -> list[dict]:
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    with crm.db.write() as session:
        own = users.add_team(session, "own", "Own stages").id
        plain = users.add_team(session, "plain", "Default stages").id
        pipeline.set_stages(session, own, TEAM_STAGES)
        cid = _customer(session)
        rows = []
        for i in range(count):
            team = rng.choice((None, own, plain))
            close = rng.choice(
                (
                    None,
                    dt.date(2026, 5, 31),
                    dt.date(2025, 12, 1),
                    AS_OF,
                    dt.date(2026, 6, 30),
                    *(dt.date(2026, m, rng.choice((1, 28))) for m in (7, 8, 12)),
                    dt.date(2027, 1, 1),
                )
            )
            rows.append(
                {
                    "customer_id": cid,
                    "title": f"Deal {i}",
                    "expected_revenue_minor": rng.choice((0, 1_234_567, 999, 5_000_001)),
                    "currency": rng.choices(("VND", "USD"), (9, 1))[0],
                    "probability": rng.choice((0, 5, 33, 50, 75, 99)),
                    "probability_overridden": False,
                    "expected_close": close,
                    "team_id": team,
                    "stage": rng.choice(
                        ("new", "qualified", "proposal", "negotiation", "won", "lost", "closing")
                    ),
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
            )
        session.execute(insert(Opportunity), rows)
    return rows


def _is_open(row: dict, own_team_ids: set) -> bool:
    stages = TEAM_STAGES if row["team_id"] in own_team_ids else DEFAULT_STAGES
    return any(name == row["stage"] and kind == "open" for name, _, _, kind in stages)


def _reference_pipeline(rows: list[dict], own_team_ids: set) -> tuple[dict, int]:
    groups: dict[str, list] = {}
    other = 0
    for row in rows:
        if not _is_open(row, own_team_ids):
            continue
        if row["currency"] != "VND":
            other += 1
            continue
        close = row["expected_close"]
        if close is None:
            name = "undated"
        elif (close.year, close.month) < (AS_OF.year, AS_OF.month):
            name = "overdue"
        else:
            name = close.strftime("%Y-%m")
        g = groups.setdefault(name, [0, 0, Decimal(0)])
        g[0] += 1
        g[1] += row["expected_revenue_minor"]
        g[2] += Decimal(row["expected_revenue_minor"]) * row["probability"] / 100
    return {
        name: (n, total, int(w.quantize(Decimal(1), rounding=ROUND_HALF_UP)))
        for name, (n, total, w) in groups.items()
    }, other


def test_pipeline_forecast_equals_a_reference(an_crm):
    rows = _opportunities(an_crm)
    with an_crm.db.session() as session:
        own = {t for t in session.scalars(select(users.Team.id).where(users.Team.name == "own"))}
        got = forecast.pipeline_forecast(session, AS_OF, "VND")
    expected, other = _reference_pipeline(rows, own)
    assert {
        g["group"]: (g["count"], g["expected_minor"], g["weighted_minor"]) for g in got["groups"]
    } == expected
    assert got["other_currency"] == other > 0
    names = [g["group"] for g in got["groups"]]
    assert names[0] == "overdue" and names[-1] == "undated"
    assert got["total"]["count"] == sum(n for n, _, _ in expected.values())
    assert {"2026-06", "2026-07", "2027-01"} <= set(expected)  # D's month is not overdue


def test_weighted_revenue_rounds_half_up_per_group():
    assert forecast.round_half_up(150, 100) == 2
    assert forecast.round_half_up(149, 100) == 1
    assert forecast.round_half_up(250, 100) == 3
    assert forecast.round_half_up(0, 100) == 0


def _generating(t: int) -> float:
    return 10_000_000 + 200_000 * t + 3_000_000 * math.sin(2 * math.pi * t / 12)


def _monthly_orders(crm, months: int, start: dt.date, seed: int = 8) -> list[int]:
    """One order per month worth the generating function plus noise (and orders that must not
    count: cancelled, another currency); returns the monthly totals."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    totals, rows = [], []
    with crm.db.write() as session:
        cid = _customer(session)
        for t in range(months):
            year, month = divmod(start.month - 1 + t, 12)
            day = dt.datetime(start.year + year, month + 1, 1, 0, 5, tzinfo=dt.UTC)
            value = round(_generating(t) + rng.gauss(0, 100_000))
            totals.append(value)
            for n, (total, currency, status) in enumerate(
                ((value, "VND", "paid"), (77_777, "VND", "cancelled"), (55_555, "USD", "paid"))
            ):
                rows.append(
                    {
                        "ref": f"R{t}-{n}",
                        "customer_id": cid,
                        "placed_at": day,
                        "total_minor": total,
                        "status": status,
                        "currency": currency,
                        "created_at": now,
                        "version": 1,
                    }
                )
        if rows:
            session.execute(insert(Order), rows)
    return totals


def test_holt_winters_beats_the_naive_forecast_on_a_seasonal_series(an_crm):
    totals = _monthly_orders(an_crm, 48, dt.date(2022, 6, 1))  # June 2022 .. May 2026
    with an_crm.db.write() as session:
        run = forecast.refresh(session, AS_OF, "VND")  # June 2026 is not complete
        revenue = run.summary["revenue"]
    assert revenue["actual"] == totals and revenue["months"][-1] == "2026-05"
    assert revenue["model"] == "holt_winters"
    test = revenue["backtest"]
    assert test["holdout"] == 12 and test["actual"] == totals[-12:]
    assert test["naive"] == totals[24:36]  # the same months one year earlier
    model_mae = sum(abs(a - p) for a, p in zip(totals[-12:], test["model"], strict=True)) / 12
    assert test["model_errors"]["mae"] == round(model_mae)
    assert test["model_errors"]["mae"] < test["naive_errors"]["mae"]
    assert test["model_errors"]["mape"] < test["naive_errors"]["mape"]
    assert test["winner"] == "model"
    future = revenue["forecast"]
    assert future["months"] == ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]
    for t, value in enumerate(future["model"], start=48):
        assert isinstance(value, int)
        assert abs(value - _generating(t)) < 0.04 * _generating(t), (t, value)
    assert future["naive"] == totals[36:42]
    assert revenue["params"]["damping_trend"] is not None
    assert run.params["model"] == "holt_winters"


def test_the_month_of_d_counts_when_d_is_its_last_day(an_crm):
    totals = _monthly_orders(an_crm, 12, dt.date(2025, 7, 1))  # July 2025 .. June 2026
    with an_crm.db.session() as session:
        revenue = forecast.revenue_forecast(session, dt.date(2026, 6, 30), "VND")
    assert revenue["actual"] == totals and revenue["months"][-1] == "2026-06"


def test_a_short_history_falls_back_to_holt(an_crm):
    totals = _monthly_orders(an_crm, 10, dt.date(2025, 8, 1))  # Aug 2025 .. May 2026
    with an_crm.db.session() as session:
        revenue = forecast.revenue_forecast(session, AS_OF, "VND")
    assert revenue["model"] == "holt" and revenue["params"]["smoothing_seasonal"] is None
    test = revenue["backtest"]
    assert test["holdout"] == 3 and test["train_months"] == 7
    assert test["naive_kind"] == "last" and test["naive"] == [totals[6]] * 3
    assert len(revenue["forecast"]["model"]) == 6
    assert all(v >= 0 for v in revenue["forecast"]["model"])


def test_too_little_or_no_history(an_crm):
    with an_crm.db.write() as session:
        run = forecast.refresh(session, AS_OF, "VND")
        assert run.summary["revenue"]["actual"] == []
        assert run.summary["revenue"]["forecast"] is None
        assert run.summary["pipeline"]["groups"] == []
    _monthly_orders(an_crm, 4, dt.date(2026, 2, 1))
    with an_crm.db.write() as session:
        run = forecast.refresh(session, AS_OF, "VND")
        revenue = run.summary["revenue"]
        assert revenue["model"] is None and revenue["backtest"] is None
        assert len(revenue["actual"]) == 4
        assert session.scalar(select(Run.rows).where(Run.id == run.id)) == 4
        assert len(list(session.scalars(select(Run).where(Run.kind == "forecast")))) == 1


def test_errors_leave_zero_months_out_of_mape():
    got = forecast.errors([100, 0, 200], [110, 50, 100])
    assert got["mae"] == round((10 + 50 + 100) / 3)
    assert got["mape"] == round((0.1 + 0.5) / 2, 4)
    assert forecast.errors([0, 0], [1, 2])["mape"] is None


def test_refresh_step_uses_the_default_currency(an_crm):
    _monthly_orders(an_crm, 8, dt.date(2025, 10, 1))
    with an_crm.db.write() as session:
        run = forecast.refresh_step(an_crm, session, AS_OF)
        assert run.params["currency"] == an_crm.settings.default_currency == "VND"
        assert run.summary["revenue"]["model"] == "holt"
