"""``crm settings`` lists the core's and the analytical module's settings; bad values stop."""

from __future__ import annotations

import json


def _enable(cli) -> None:
    env = {"CRM_LOAD_PLUGINS": "operational,analytical"}
    assert (
        cli(
            "init",
            "--admin-email",
            "admin@example.com",
            "--admin-password",
            "Admin-pass-123",
            "--no-config",
            **env,
        ).exit_code
        == 0
    )
    assert cli("modules", "enable", "analytical", **env).exit_code == 0


def test_settings_lists_module_settings_with_their_effective_values(cli):
    _enable(cli)
    env = {"CRM_LOAD_PLUGINS": "operational,analytical", "CRM_ANALYTICAL_COST_PER_TICKET": "80000"}
    done = cli("settings", "--format", "json", **env)
    assert done.exit_code == 0, done.output
    rows = {(r["module"], r["name"]): r for r in json.loads(done.output)}
    assert rows[("analytical", "cost_per_ticket")]["value"] == 80_000
    assert rows[("analytical", "cost_per_ticket")]["variable"] == "CRM_ANALYTICAL_COST_PER_TICKET"
    assert rows[("analytical", "control_percent")]["value"] == 10  # the default
    assert rows[("core", "default_currency")]["value"] == "VND"
    assert not any(r["name"] == "secret_key" for r in rows.values())
    only = json.loads(cli("settings", "--module", "analytical", "--format", "json", **env).output)
    assert {r["module"] for r in only} == {"analytical"}


def test_a_bad_module_setting_stops_with_its_name(cli):
    _enable(cli)
    env = {"CRM_LOAD_PLUGINS": "operational,analytical", "CRM_ANALYTICAL_CONTROL_PERCENT": "150"}
    done = cli("settings", **env)
    assert done.exit_code == 1
    assert "CRM_ANALYTICAL_CONTROL_PERCENT: must be at most 100, got 150" in done.output
    done = cli("settings", "--module", "nosuch", **{"CRM_LOAD_PLUGINS": "operational,analytical"})
    assert done.exit_code == 2
    assert "no module 'nosuch'" in done.output
