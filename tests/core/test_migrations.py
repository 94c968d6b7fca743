"""Per-module Alembic branches, the schema check, and `crm db`."""

import json

import pytest
from sqlalchemy import text

from core import migrate, modules
from core.errors import SchemaMismatchError
from tests.schema_diff import module_diffs


def test_core_migration_matches_the_models(crm):
    # Modules' models may be imported in this process too; only the core's tables count here.
    assert module_diffs(crm.db.engine, "core_") == []


def test_each_module_has_its_own_branch(crm):
    modules.enable(crm, ["sample"])
    with crm.db.engine.connect() as conn:
        statuses = {s.module: s for s in migrate.status(crm, conn, ["sample"])}
    assert statuses["sample"].current == "sample_0001" and statuses["sample"].up_to_date
    assert statuses["core"].current == statuses["core"].head and statuses["core"].up_to_date
    modules.uninstall(crm, "sample")
    assert migrate.check_current(crm, []) == []  # the core's revision is still known


def test_app_refuses_an_uninitialised_database(make_crm):
    from core.web.app import create_app

    with pytest.raises(SchemaMismatchError, match="crm init"):
        create_app(make_crm())


def test_app_refuses_a_schema_behind_the_code_and_db_upgrade_fixes_it(crm, cli):
    from core.web.app import create_app

    modules.enable(crm, ["sample"])
    with crm.db.engine.begin() as conn:  # the module's migration "not applied yet"
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = 'sample_0001'"))
        if not conn.execute(text("SELECT count(*) FROM alembic_version")).scalar():
            conn.execute(text("INSERT INTO alembic_version VALUES ('core_0002')"))
        conn.execute(text("DROP TABLE sample_note"))
    crm.refresh()
    with pytest.raises(SchemaMismatchError, match=r"sample: schema not installed.*crm db upgrade"):
        create_app(crm)
    served = cli("serve")
    assert served.exit_code == 1 and "crm db upgrade" in served.output
    current = cli("db", "current", "--format", "json")
    assert {
        "module": "sample",
        "head": "sample_0001",
        "current": None,
        "up_to_date": False,
    } in json.loads(current.output)
    assert cli("db", "upgrade").exit_code == 0
    create_app(crm)  # starts now
    assert cli("check", "--module", "core").exit_code == 0
