"""The `crm` command as admins use it: in-process and as a real subprocess."""

import json

import pytest


def test_help_lists_core_commands_and_enabled_module_commands(crm, cli):
    result = cli.run("--help")
    assert result.returncode == 0
    for command in ("init", "serve", "modules", "db", "check", "users"):
        assert command in result.stdout
    assert "sample" not in result.stdout
    assert cli.run("modules", "enable", "sample").returncode == 0
    assert "Sample notes." in cli.run("--help").stdout


def test_plugin_command_works_end_to_end(crm, cli):
    cli.run("modules", "enable", "sample", check=True)
    assert cli.run("sample", "add", "Đơn hàng mới").returncode == 0
    assert cli.run("sample", "count").stdout.strip() == "notes: 2"
    cli.run("modules", "disable", "sample", check=True)
    gone = cli.run("sample", "count")
    assert gone.returncode == 2 and "No such command 'sample'" in gone.stderr


def test_bad_setting_stops_with_its_name(tmp_path, cli):
    result = cli.run("modules", "list", CRM_DEFAULT_CURRENCY="dollars")
    assert result.returncode == 1
    assert "CRM_DEFAULT_CURRENCY" in result.stderr and "Traceback" not in result.stderr


def test_commands_need_an_initialised_database(cli):
    result = cli("modules", "list")
    assert result.exit_code == 1 and "crm init" in result.output


def test_init_prints_a_generated_password_once_and_is_idempotent(cli, tmp_path):
    first = cli.run("init", "--admin-email", "root@example.com", CRM_SECRET_KEY="")
    assert first.returncode == 1 and "CRM_SECRET_KEY" in first.stderr  # empty key refused
    first = cli.run("init", "--admin-email", "root@example.com")
    assert first.returncode == 0, first.stderr
    assert "Password (shown once):" in first.stdout
    again = cli.run("init")
    assert again.returncode == 0 and "Already initialised" in again.stdout


def test_init_writes_a_secret_key_when_none_is_configured(cli, tmp_path):
    from core.settings import load_settings

    env = {k: v for k, v in cli.env.items() if k != "CRM_SECRET_KEY"}
    result = cli.run(
        "init",
        "--admin-password",
        "Admin-pass-123",
        CRM_SECRET_KEY="insecure-default-secret-change-me",
    )
    assert result.returncode == 0
    assert "secret_key" in (tmp_path / "crm.toml").read_text()
    assert not load_settings(environ=env, cwd=tmp_path).secret_key_is_default


def test_broken_plugins_are_listed_and_the_rest_works(crm, cli):
    env = {"CRM_LOAD_PLUGINS": "broken_import,bad_manifest,cycle_a,cycle_b,sample"}
    assert cli.run("--help", **env).returncode == 0
    listed = cli.run("modules", "list", "--format", "json", **env)
    assert listed.returncode == 0
    found = {m["name"]: m for m in json.loads(listed.stdout)}
    assert "some_missing_dependency" in found["broken_import"]["errors"][0]
    assert "version" in found["bad_manifest"]["errors"][0]
    assert "cycle" in found["cycle_a"]["errors"][0]
    assert found["sample"]["errors"] == [] and found["sample"]["state"] == "uninstalled"
    assert {"name", "version", "state", "depends"} <= set(found["sample"])
    assert cli.run("modules", "enable", "sample", **env).returncode == 0
    refused = cli.run("modules", "enable", "cycle_a", **env)
    assert refused.returncode == 1 and "cycle between modules: cycle_a -> cycle_b" in refused.stderr


def test_strict_plugins_make_a_broken_plugin_fatal(crm, cli):
    result = cli.run(
        "modules", "list", CRM_LOAD_PLUGINS="broken_import,sample", CRM_STRICT_PLUGINS="1"
    )
    assert result.returncode == 1 and "broken_import" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["modules", "enable", "nope"], "unknown module 'nope'"),
        (["modules", "enable"], "name at least one module"),
        (["modules", "disable", "nope"], "unknown module 'nope'"),
        (["modules", "uninstall", "sample", "--purge", "--yes"], "not installed"),
        (["users", "add", "not-an-email", "--password", "Password-123"], "not a valid e-mail"),
        (["users", "add", "x@example.com", "--password", "short"], "at least 10"),
        (
            ["users", "add", "x@example.com", "--password", "Password-123", "--role", "boss"],
            "unknown role(s) boss",
        ),
        (["users", "add", "admin@example.com", "--password", "Password-123"], "already exists"),
        (["users", "set-role", "nobody@example.com", "sales"], "no user with e-mail"),
        (["users", "token", "revoke", "--user", "admin@example.com"], "no active token"),
    ],
)
def test_bad_input_gets_a_clear_error(crm, cli, args, message):
    result = cli(*args)
    assert result.exit_code != 0
    assert message in result.output


def test_uninstall_shows_impact_and_needs_purge(crm, cli):
    cli("modules", "enable", "sample")
    refused = cli("modules", "uninstall", "sample")
    assert refused.exit_code == 1
    assert "table sample_note (1 rows)" in refused.output and "--purge" in refused.output
    aborted = cli("modules", "uninstall", "sample", "--purge", input="n\n")
    assert aborted.exit_code == 1
    assert json.loads(cli("modules", "list", "--format", "json").stdout)[0]["state"] == "installed"
    done = cli("modules", "uninstall", "sample", "--purge", input="y\n")
    assert done.exit_code == 0 and "Backup:" in done.output
    assert (
        json.loads(cli("modules", "list", "--format", "json").stdout)[0]["state"] == "uninstalled"
    )


def test_users_and_roles(crm, cli):
    assert (
        cli(
            "users",
            "add",
            "lan@example.com",
            "--name",
            "Trần Thị Lan",
            "--role",
            "sales",
            "--role",
            "service",
            "--password",
            "Password-123",
            "--language",
            "vi",
        ).exit_code
        == 0
    )
    assert cli("users", "set-role", "lan@example.com", "manager").exit_code == 0
    listed = {u["email"]: u for u in json.loads(cli("users", "list", "--format", "json").stdout)}
    assert listed["lan@example.com"]["roles"] == ["manager"]
    assert listed["lan@example.com"]["name"] == "Trần Thị Lan"
    assert cli("users", "deactivate", "lan@example.com").exit_code == 0
    listed = {u["email"]: u for u in json.loads(cli("users", "list", "--format", "json").stdout)}
    assert listed["lan@example.com"]["active"] is False


def test_unreachable_database_is_a_clear_error_that_hides_the_password(cli):
    url = "postgresql://crm:hunter2-secret@127.0.0.1:1/crm"
    assert cli.run("--help", CRM_DATABASE_URL=url).returncode == 0
    result = cli.run("modules", "list", CRM_DATABASE_URL=url)
    assert result.returncode == 1
    assert (
        "cannot use the database at postgresql+psycopg://crm:***@127.0.0.1:1/crm" in result.stderr
    )
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
