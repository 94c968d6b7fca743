"""Event hooks run after commit, once per implementation, isolated from each other."""

import pytest

from core import events, modules, users


@pytest.fixture
def events_file(tmp_path, monkeypatch):
    path = tmp_path / "events.log"
    monkeypatch.setenv("CRM_TEST_EVENTS", str(path))
    return path


def test_event_fires_after_commit_only(crm, events_file):
    modules.enable(crm, ["sample"])
    events_file.write_text("")
    with pytest.raises(RuntimeError), crm.db.write() as session:
        user = users.create_user(session, "a@example.com", "A", "Password-123", ["sales"])
        events.emit(session, crm, "user_created", user=user)
        assert events_file.read_text() == ""  # not before commit
        raise RuntimeError("rolled back")
    assert events_file.read_text() == ""  # never for a rolled-back change
    with crm.db.write() as session:
        user = users.create_user(session, "b@example.com", "B", "Password-123", ["sales"])
        events.emit(session, crm, "user_created", user=user)
    assert events_file.read_text() == "user_created b@example.com\n"


def test_a_raising_implementation_does_not_stop_others(make_crm, crm, events_file, caplog, cli):
    other = make_crm(load_plugins="noisy,sample")
    modules.enable(other, ["noisy", "sample"])
    result = cli(
        "users",
        "add",
        "c@example.com",
        "--password",
        "Password-123",
        CRM_LOAD_PLUGINS="noisy,sample",
    )
    assert result.exit_code == 0
    assert "user_created c@example.com" in events_file.read_text()
    assert any("plugin noisy: hook user_created raised" in r.message for r in caplog.records)


def test_disabled_modules_get_no_events(crm, events_file):
    modules.enable(crm, ["sample"])
    modules.disable(crm, "sample")
    events_file.write_text("")
    crm.notify("user_created", user=type("U", (), {"email": "x@example.com"})())
    assert events_file.read_text() == ""
