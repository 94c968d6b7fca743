"""The module's migration matches its models, installs defaults, and uninstalls cleanly."""

from sqlalchemy import select

from core import modules
from plugins.operational.models import SlaPolicy, Stage
from tests.schema_diff import module_diffs


def test_migration_matches_the_models(ops_crm):
    assert module_diffs(ops_crm.db.engine, "operational_") == []


def test_enabling_installs_the_default_pipeline_and_sla(ops_crm):
    with ops_crm.db.session() as session:
        stages = session.scalars(select(Stage).order_by(Stage.sequence)).all()
        assert [s.name for s in stages] == [
            "new",
            "qualified",
            "proposal",
            "negotiation",
            "won",
            "lost",
        ]
        assert {p.priority for p in session.scalars(select(SlaPolicy))} == {
            "low",
            "normal",
            "high",
            "urgent",
        }


def test_uninstall_drops_every_table(ops_crm):
    modules.uninstall(ops_crm, "operational")
    with ops_crm.db.engine.connect() as conn:
        names = ops_crm.db.engine.dialect.get_table_names(conn)
    assert not [n for n in names if n.startswith("operational_")]
