"""The module's migration matches its models, it runs alone and beside every other module, and
uninstalling it drops its tables and its partner role."""

from sqlalchemy import select

from core import modules
from core.models import Role
from tests.schema_diff import module_diffs


def test_migration_matches_the_models(co_crm):
    assert module_diffs(co_crm.db.engine, "collaborative_") == []


def test_enabled_alone_it_depends_on_no_other_module(co_crm):
    assert co_crm.enabled_modules() == ["collaborative"]


def test_enabled_with_every_module(all_crm):
    assert set(all_crm.enabled_modules()) == {
        "operational",
        "analytical",
        "collaborative",
        "smart_sales",
    }
    assert module_diffs(all_crm.db.engine, "collaborative_") == []


def test_the_partner_role_sees_only_what_is_shared(co_crm):
    with co_crm.db.session() as session:
        role = session.get(Role, "partner")
        assert (role.module, role.scope) == ("collaborative", "shared")


def test_uninstall_drops_every_table_and_the_role(co_crm):
    modules.uninstall(co_crm, "collaborative")
    with co_crm.db.engine.connect() as conn:
        names = co_crm.db.engine.dialect.get_table_names(conn)
    assert not [n for n in names if n.startswith("collaborative_")]
    with co_crm.db.session() as session:
        assert session.scalar(select(Role).where(Role.name == "partner")) is None
