"""Settings from the environment and crm.toml, and the errors bad values give."""

import pytest

from core.errors import SettingsError
from core.settings import DEFAULT_SECRET_KEY, load_settings


def test_defaults_use_a_sqlite_file_in_the_working_directory(tmp_path):
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'crm.db'}"
    assert settings.default_region == "VN"
    assert settings.default_currency == "VND"
    assert settings.load_plugins is None
    assert settings.secret_key == DEFAULT_SECRET_KEY


def test_environment_wins_over_file(tmp_path):
    (tmp_path / "crm.toml").write_text('default_region = "IR"\ndefault_currency = "IRR"\n')
    settings = load_settings(environ={"CRM_DEFAULT_REGION": "us"}, cwd=tmp_path)
    assert settings.default_region == "US"
    assert settings.default_currency == "IRR"


def test_empty_load_plugins_means_none(tmp_path):
    assert load_settings(environ={"CRM_LOAD_PLUGINS": ""}, cwd=tmp_path).load_plugins == ()
    both = load_settings(environ={"CRM_LOAD_PLUGINS": "a, b"}, cwd=tmp_path)
    assert both.load_plugins == ("a", "b")


def test_postgresql_url_gets_the_psycopg_driver(tmp_path):
    env = {"CRM_DATABASE_URL": "postgresql://u:p@localhost/crm"}
    assert load_settings(environ=env, cwd=tmp_path).database_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("CRM_DATABASE_URL", "mysql://x", "CRM_DATABASE_URL"),
        ("CRM_SECRET_KEY", "short", "CRM_SECRET_KEY"),
        ("CRM_DEFAULT_REGION", "Vietnam", "CRM_DEFAULT_REGION"),
        ("CRM_DEFAULT_CURRENCY", "DONG", "CRM_DEFAULT_CURRENCY"),
        ("CRM_STRICT_PLUGINS", "maybe", "CRM_STRICT_PLUGINS"),
        ("CRM_BACKUP_MAX_AGE_HOURS", "-3", "CRM_BACKUP_MAX_AGE_HOURS"),
    ],
)
def test_invalid_setting_names_the_setting(tmp_path, name, value, fragment):
    with pytest.raises(SettingsError, match=fragment):
        load_settings(environ={name: value}, cwd=tmp_path)


def test_unknown_key_and_bad_toml_are_reported(tmp_path):
    (tmp_path / "crm.toml").write_text('databse_url = "sqlite:///x.db"\n')
    with pytest.raises(SettingsError, match="databse_url"):
        load_settings(environ={}, cwd=tmp_path)
    (tmp_path / "crm.toml").write_text("not = [toml\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(environ={}, cwd=tmp_path)


def test_missing_config_file_named_by_crm_config(tmp_path):
    with pytest.raises(SettingsError, match="CRM_CONFIG"):
        load_settings(environ={"CRM_CONFIG": str(tmp_path / "nope.toml")}, cwd=tmp_path)


def _declared():
    from core.settings import ModuleSetting, non_negative_int, percent

    return [
        ModuleSetting("cost_per_ticket", 50_000, non_negative_int, "cost of a ticket"),
        ModuleSetting("control_percent", 10, percent, "control share"),
    ]


def test_module_settings_come_from_env_then_file_then_default(tmp_path):
    from core.settings import module_settings

    (tmp_path / "crm.toml").write_text("[analytical]\ncost_per_ticket = 70000\n", encoding="utf-8")
    settings = load_settings(environ={}, cwd=tmp_path)
    assert module_settings(settings, "analytical", _declared()) == {
        "cost_per_ticket": 70_000,
        "control_percent": 10,
    }
    settings = load_settings(environ={"CRM_ANALYTICAL_COST_PER_TICKET": "1"}, cwd=tmp_path)
    assert module_settings(settings, "analytical", _declared())["cost_per_ticket"] == 1


def test_bad_module_settings_name_the_setting(tmp_path):
    from core.errors import SettingsError
    from core.settings import module_settings

    (tmp_path / "crm.toml").write_text(
        "[analytical]\ncontrol_percent = 140\ncost_per_tiket = 1\n", encoding="utf-8"
    )
    settings = load_settings(environ={}, cwd=tmp_path)
    with pytest.raises(
        SettingsError, match=r"\[analytical\] has unknown setting\(s\) cost_per_tiket"
    ):
        module_settings(settings, "analytical", _declared())
    (tmp_path / "crm.toml").write_text("[analytical]\ncontrol_percent = 140\n", encoding="utf-8")
    settings = load_settings(environ={}, cwd=tmp_path)
    with pytest.raises(SettingsError, match=r"control_percent: must be at most 100, got 140"):
        module_settings(settings, "analytical", _declared())
    settings = load_settings(environ={"CRM_ANALYTICAL_CONTROL_PERCENT": "ten"}, cwd=tmp_path)
    with pytest.raises(SettingsError, match="CRM_ANALYTICAL_CONTROL_PERCENT: expected a whole"):
        module_settings(settings, "analytical", _declared())
