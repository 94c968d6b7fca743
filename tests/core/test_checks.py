"""The pre-deployment checklist: automatic checks, attestations, levels, silencing, JSON."""

import json

import pytest

from core import checks, modules


def by_id(results):
    return {r["id"]: r for r in results}


def run_json(cli, *args, **env):
    result = cli("check", "--format", "json", *args, **env)
    return result.exit_code, by_id(json.loads(result.stdout))


def test_json_has_the_documented_fields(crm, cli):
    code, results = run_json(cli)
    assert code == 0
    item = results["core.E003"]
    assert {"id", "level", "category", "module", "message", "hint", "status"} <= set(item)
    assert item["status"] == "ok" and item["module"] == "core"
    assert "core.W010" not in results  # attestations are deployment items


def test_deploy_items_open_until_fixed(crm, cli):
    code, results = run_json(cli, "--deploy")
    assert code == 1
    assert results["core.E002"]["status"] == "open"  # initial admin password
    assert results["core.W006"]["status"] == "open"  # only admins
    assert results["core.W005"]["status"] == "open"  # no backup yet
    assert results["core.W010"]["status"] == "open" and results["core.W010"]["category"] == "people"
    cli("users", "set-password", "admin@example.com", "--password", "New-admin-pass-1")
    cli("users", "add", "seller@example.com", "--password", "Seller-pass-123")
    cli("db", "backup", "backup.db")
    code, results = run_json(cli, "--deploy")
    assert code == 0
    assert all(results[i]["status"] == "ok" for i in ("core.E002", "core.W006", "core.W005"))


def test_default_secret_key_is_critical(crm, cli):
    from core.settings import DEFAULT_SECRET_KEY

    code, results = run_json(cli, "--deploy", CRM_SECRET_KEY=DEFAULT_SECRET_KEY)
    assert code == 1 and results["core.E001"]["status"] == "open"


def test_fail_level_and_silencing(crm, cli):
    assert cli("check", "--deploy", "--fail-level", "critical").exit_code == 0
    code, results = run_json(cli, "--deploy", CRM_SILENCED_CHECKS="core.E002")
    assert results["core.E002"]["status"] == "silenced"
    assert code == 0


def test_attestation_recorded_with_who_and_when(crm, cli):
    done = cli("check", "--ack", "core.W010", "--by", "ADMIN@example.com", "--note", "Chị Hương")
    assert done.exit_code == 0, done.output
    _, results = run_json(cli, "--deploy")
    item = results["core.W010"]
    assert item["status"] == "attested"
    assert item["attested_by"] == "admin@example.com" and item["detail"] == "Chị Hương"
    assert item["attested_at"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ack", "core.W999", "--by", "admin@example.com"], "no checklist item 'core.W999'"),
        (["--ack", "core.E003", "--by", "admin@example.com"], "automatic check"),
        (["--ack", "core.W010", "--by", "nobody@example.com"], "no active user"),
        (["--ack", "core.W010"], "--by"),
        (["--module", "nope"], "unknown or disabled module 'nope'"),
    ],
)
def test_bad_check_input_is_refused(crm, cli, args, message):
    result = cli("check", *args)
    assert result.exit_code != 0 and message in result.output


def test_module_items_appear_when_enabled(crm, cli):
    _, results = run_json(cli)
    assert "sample.W001" not in results
    modules.enable(crm, ["sample"])
    _, results = run_json(cli, "--deploy", "--module", "sample")
    assert set(results) == {"sample.W001", "sample.E002"}
    assert results["sample.W001"]["status"] == "ok"  # post_install wrote a note
    assert results["sample.E002"]["status"] == "open"
    assert cli("check", "--deploy", "--module", "sample").exit_code == 1


def test_a_failing_module_is_reported_and_others_still_run(crm, make_crm):
    from core.bootstrap import initialise

    other = make_crm(load_plugins="noisy,sample")
    initialise(other, "admin@example.com", "Admin-pass-123")
    modules.enable(other, ["noisy", "sample"])
    results = {r.id: r for r in checks.run(other)}
    assert results["noisy.checklist"].status == "open"
    assert "noisy checklist failed" in results["noisy.checklist"].detail
    assert results["sample.W001"].status == "ok"


def test_item_ids_must_be_namespaced_by_module():
    item = checks.CheckItem("other.W001", "warning", "data", "m")
    with pytest.raises(ValueError, match=r"must start with .sample\.."):
        item.validate("sample")
    with pytest.raises(ValueError, match="level"):
        checks.CheckItem("sample.W001", "loud", "data", "m").validate("sample")


def test_routes_without_an_access_rule_are_named_by_the_checklist(crm, make_crm):
    from core.bootstrap import initialise

    modules.enable(crm, ["sample"])  # every route of the core and of sample declares its rule
    assert {r.id: r for r in checks.run(crm)}["core.W017"].status == "ok"

    other = make_crm(load_plugins="loose,sample")
    initialise(other, "admin@example.com", "Admin-pass-123")
    modules.enable(other, ["loose", "sample"])
    found = {r.id: r for r in checks.run(other)}["core.W017"]
    assert (found.status, found.detail) == (
        "open",
        "1 routes declare no access rule: GET /loose/ping",
    )
