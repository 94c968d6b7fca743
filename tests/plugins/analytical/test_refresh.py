"""``crm analytics refresh``: every snapshot stored as of one date; a failing step names itself,
exits non-zero and keeps what was stored before it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from core.customers import demo_data
from plugins.analytical.models import Run
from plugins.analytical.refresh import step_names
from plugins.operational import demo
from plugins.operational.models import Order

ENV = {"CRM_LOAD_PLUGINS": "operational,analytical"}


def _runs(crm) -> dict[str, tuple[dt.date, int]]:
    with crm.db.session() as session:
        return {
            kind: (as_of, rows)
            for kind, as_of, rows in session.execute(select(Run.kind, Run.as_of, Run.rows))
        }


def test_refresh_stores_every_snapshot_as_of_the_date(an_crm, cli):
    demo_data.load(an_crm, 150, seed=5)
    demo.load(an_crm, seed=5)
    today = dt.datetime.now(dt.UTC).date()
    done = cli("analytics", "refresh", "--as-of", today.isoformat(), **ENV)
    assert done.exit_code == 0, done.output
    runs = _runs(an_crm)
    assert set(runs) == set(step_names())
    assert all(as_of == today for as_of, _ in runs.values())
    with an_crm.db.session() as session:
        customers_with_orders = session.scalar(select(func.count(func.distinct(Order.customer_id))))
    assert 0 < runs["rfm"][1] <= customers_with_orders
    assert runs["classes"][1] >= runs["rfm"][1]  # every customer has a class, buyers or not
    for step in step_names():
        assert step in done.output
    # again for the same date: replaced, not duplicated
    assert (
        cli("analytics", "refresh", "--as-of", today.isoformat(), "--only", "rfm", **ENV).exit_code
        == 0
    )
    with an_crm.db.session() as session:
        assert session.scalar(select(func.count()).where(Run.kind == "rfm")) == 1


def test_a_failing_step_is_named_and_earlier_snapshots_stay(an_crm, cli):
    demo_data.load(an_crm, 40, seed=6)
    demo.load(an_crm, seed=6)
    done = cli("analytics", "refresh", **ENV, CRM_ANALYTICAL_CLV_UNIT="fortnight")
    assert done.exit_code == 1
    assert "step clv failed" in done.output and "CRM_ANALYTICAL_CLV_UNIT" in done.output
    assert set(_runs(an_crm)) == {"rfm"}


def test_unknown_steps_are_refused(an_crm, cli):
    done = cli("analytics", "refresh", "--only", "rfm", "--only", "magic", **ENV)
    assert done.exit_code == 2
    assert "unknown step(s) magic" in done.output
    assert _runs(an_crm) == {}
