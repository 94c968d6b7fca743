"""The module's migration matches its models, it runs beside every other module, and
uninstalling it drops its tables."""

from sqlalchemy import inspect

from core import modules
from tests.schema_diff import module_diffs


def test_migration_matches_the_models(ss_crm):
    assert module_diffs(ss_crm.db.engine, "smart_sales_") == []


def test_enabled_with_every_module(every_crm):
    assert set(every_crm.enabled_modules()) == {
        "operational",
        "analytical",
        "collaborative",
        "smart_sales",
    }
    assert module_diffs(every_crm.db.engine, "smart_sales_") == []


def test_one_open_alert_per_customer_and_product_is_a_database_rule(ss_crm):
    uniques = inspect(ss_crm.db.engine).get_unique_constraints("smart_sales_alert")
    assert [u["column_names"] for u in uniques] == [["open_key"]]


def test_uninstall_drops_every_table(ss_crm):
    modules.uninstall(ss_crm, "smart_sales")
    with ss_crm.db.engine.connect() as conn:
        names = ss_crm.db.engine.dialect.get_table_names(conn)
    assert not [n for n in names if n.startswith("smart_sales_")]
