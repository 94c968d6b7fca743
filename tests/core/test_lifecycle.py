"""Module lifecycle: enable with dependencies, disable, uninstall with purge, rollback, repair."""

import json

import pytest
from sqlalchemy import inspect, text

from core import modules
from core.errors import ModuleError


def tables(crm):
    with crm.db.engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def state(crm, name):
    return modules.states(crm)[name].state


def count(crm, table):
    with crm.db.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


@pytest.fixture
def deps_crm(crm, make_crm):
    from core.bootstrap import initialise

    instance = make_crm(load_plugins="sample,sample_dep")
    initialise(instance, "admin@example.com", "Admin-pass-123")
    return instance


def test_enable_brings_dependencies_first_and_is_idempotent(deps_crm, tmp_path, monkeypatch):
    events = tmp_path / "events.log"
    monkeypatch.setenv("CRM_TEST_EVENTS", str(events))
    assert modules.enable(deps_crm, ["sample_dep"]) == ["sample", "sample_dep"]
    assert state(deps_crm, "sample") == "installed"
    assert {"sample_note", "sample_dep_item"} <= tables(deps_crm)
    assert count(deps_crm, "sample_note") == 1  # written by post_install
    assert events.read_text() == "post_install sample\n"
    assert modules.enable(deps_crm, ["sample_dep"]) == []
    assert count(deps_crm, "sample_note") == 1


def test_unknown_module_is_refused(crm):
    with pytest.raises(ModuleError, match="unknown module 'nope'"):
        modules.enable(crm, ["nope"])


def test_disable_refuses_while_dependents_are_enabled(deps_crm):
    modules.enable(deps_crm, ["sample_dep"])
    with pytest.raises(ModuleError, match="sample_dep depend on it"):
        modules.disable(deps_crm, "sample")
    assert state(deps_crm, "sample") == "installed"
    assert modules.disable(deps_crm, "sample", with_dependents=True) == ["sample_dep", "sample"]
    assert state(deps_crm, "sample_dep") == "disabled"


def test_disable_then_enable_keeps_data_and_runs_post_install_once(crm):
    modules.enable(crm, ["sample"])
    with crm.db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO sample_note (text, created_at) VALUES ('kept', '2026-01-01')")
        )
    modules.disable(crm, "sample")
    assert crm.enabled_modules() == []
    assert count(crm, "sample_note") == 2
    modules.enable(crm, ["sample"])
    assert count(crm, "sample_note") == 2


def test_uninstall_purge_backs_up_and_drops_only_its_tables(deps_crm, tmp_path):
    modules.enable(deps_crm, ["sample_dep"])
    before = tables(deps_crm)
    impact = modules.uninstall_impact(deps_crm, "sample")
    assert impact.modules == ["sample_dep", "sample"]
    assert impact.tables == {"sample_dep": {"sample_dep_item": 0}, "sample": {"sample_note": 1}}
    _, backup = modules.uninstall(deps_crm, "sample")
    assert backup.exists() and backup.stat().st_size > 0
    assert before - tables(deps_crm) == {"sample_note", "sample_dep_item"}
    assert state(deps_crm, "sample") == "uninstalled"
    with deps_crm.db.engine.connect() as conn:
        perms = conn.execute(text("SELECT name FROM core_permission")).scalars().all()
    assert not [p for p in perms if p.startswith("sample.")]
    modules.enable(deps_crm, ["sample"])  # reinstall works
    assert count(deps_crm, "sample_note") == 1


def test_failed_migration_leaves_schema_and_states_as_before(make_crm, crm):
    from core.bootstrap import initialise

    other = make_crm(load_plugins="sample,failing_migration")
    initialise(other, "admin@example.com", "Admin-pass-123")
    modules.enable(other, ["sample"])
    before = tables(other)
    with pytest.raises(ModuleError) as info:
        modules.enable(other, ["failing_migration"])
    message = str(info.value)
    assert "'failing_migration'" in message and "'migrations'" in message
    assert "simulated failure" in message
    assert tables(other) == before
    assert state(other, "failing_migration") == "uninstalled"
    assert "simulated failure" in modules.states(other)["failing_migration"].last_error
    assert other.enabled_modules() == ["sample"]


def test_crash_mid_enable_is_repaired_on_next_start(cli):
    assert cli.run("init", "--admin-password", "Admin-pass-123").returncode == 0
    crashed = cli.run("modules", "enable", "crash", CRM_LOAD_PLUGINS="crash", CRM_TEST_CRASH="1")
    assert crashed.returncode == 9
    listed = cli.run("modules", "list", "--format", "json", CRM_LOAD_PLUGINS="crash")
    assert listed.returncode == 0, listed.stderr
    assert "Repaired an interrupted module operation: crash: to_install" in listed.stderr
    crash = next(m for m in json.loads(listed.stdout) if m["name"] == "crash")
    assert crash["state"] == "uninstalled"
    assert any("interrupted" in e for e in crash["errors"])
    enabled = cli.run("modules", "enable", "crash", CRM_LOAD_PLUGINS="crash")
    assert enabled.returncode == 0, enabled.stderr


def test_crash_left_no_table(cli, make_crm):
    cli.run("init", "--admin-password", "Admin-pass-123", check=True)
    cli.run("modules", "enable", "crash", CRM_LOAD_PLUGINS="crash", CRM_TEST_CRASH="1")
    crm = make_crm(load_plugins="crash")
    assert "crash_thing" not in tables(crm)


def test_incompatible_and_cyclic_modules_are_refused(make_crm, crm):
    other = make_crm(load_plugins="future_core,cycle_a,cycle_b")
    with pytest.raises(ModuleError, match="'future_core' cannot be enabled: supports core >=99"):
        modules.enable(other, ["future_core"])
    with pytest.raises(ModuleError, match="cycle between modules"):
        modules.enable(other, ["cycle_a"])


def test_upgrade_reports_nothing_new_and_records_version(deps_crm):
    crm = deps_crm
    modules.enable(crm, ["sample"])
    assert modules.upgrade(crm, ["sample"]) == ["sample"]
    assert modules.states(crm)["sample"].installed_version == "1.0.0"
    with pytest.raises(ModuleError, match="not installed"):
        modules.upgrade(crm, ["sample_dep"])


def test_lifecycle_is_audited(crm):
    from sqlalchemy import select

    from core.models import AuditLog

    modules.enable(crm, ["sample"])
    modules.disable(crm, "sample")
    with crm.db.session() as session:
        actions = session.scalars(
            select(AuditLog.action).where(AuditLog.model == "module").order_by(AuditLog.id)
        ).all()
    assert actions == ["module_enable", "module_disable"]


def test_uninstall_that_would_drop_another_modules_table_is_rolled_back(make_crm, crm):
    other = make_crm(load_plugins="sample,rogue")
    modules.enable(other, ["rogue"])
    with pytest.raises(ModuleError, match=r"dropped other modules' tables: \['sample_note'\]"):
        modules.uninstall(other, "rogue")
    assert {"sample_note", "rogue_thing"} <= tables(other)
    assert state(other, "rogue") == "installed"
    assert count(other, "sample_note") == 1


def test_upgrade_applies_a_new_release_migration(make_crm, crm, cli, monkeypatch):
    from core import migrate
    from core.errors import SchemaMismatchError
    from core.web.app import create_app

    v1 = make_crm(load_plugins="growing")
    modules.enable(v1, ["growing"])
    monkeypatch.setenv("CRM_TEST_GROWING", "v2")  # the new release is installed
    v2 = make_crm(load_plugins="growing")
    with pytest.raises(SchemaMismatchError, match="growing: schema at growing_0001"):
        create_app(v2)
    result = cli("modules", "upgrade", "growing", CRM_LOAD_PLUGINS="growing", CRM_TEST_GROWING="v2")
    assert result.exit_code == 0, result.output
    assert migrate.check_current(v2, ["growing"]) == []
    assert modules.states(v2)["growing"].installed_version == "2.0"
    with v2.db.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("growing_item")}
    assert columns == {"id", "name"}
    modules.uninstall(v2, "growing")
    assert "growing_item" not in tables(v2)
