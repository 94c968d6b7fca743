"""``crm demo`` with the operational module: deterministic, idempotent, consistent."""

from sqlalchemy import func, select

from core import modules
from core.bootstrap import initialise
from core.customers import demo_data
from plugins.operational import demo
from plugins.operational.models import Order, OrderLine, Survey, Ticket


def _fingerprint(crm) -> tuple:
    with crm.db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Order)),
            session.scalar(select(func.sum(Order.total_minor))),
            session.scalar(select(func.count()).select_from(Ticket)),
        )


def test_demo_is_reproducible_idempotent_and_adds_up(make_crm, ops_crm, tmp_path):
    demo_data.load(ops_crm, 60, seed=7)
    assert "products" in demo.load(ops_crm, seed=7)
    first = _fingerprint(ops_crm)
    assert demo.load(ops_crm, seed=7) == "already loaded"
    assert _fingerprint(ops_crm) == first
    with ops_crm.db.session() as session:
        lines = select(OrderLine.order_id, func.sum(OrderLine.amount_minor)).group_by(
            OrderLine.order_id
        )
        sums = dict(session.execute(lines).all())
        for order_id, total in session.execute(select(Order.id, Order.total_minor)):
            assert sums[order_id] == total
        for survey in session.scalars(select(Survey).where(Survey.rating.is_not(None))):
            assert 1 <= survey.rating <= 5
    again = make_crm(load_plugins="operational", database_url=f"sqlite:///{tmp_path / 'again.db'}")
    initialise(again, "admin@example.com", "Admin-pass-123")
    modules.enable(again, ["operational"])
    demo_data.load(again, 60, seed=7)
    demo.load(again, seed=7)
    assert _fingerprint(again) == first  # same seed, same data, on another database
