"""`crm db backup` and `crm db restore` on both databases."""

from sqlalchemy import text


def user_count(crm):
    with crm.db.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM core_user")).scalar_one()


def test_backup_and_restore_round_trip(crm, cli, tmp_path):
    cli("users", "add", "a@example.com", "--password", "Password-123")
    assert cli("db", "backup", str(tmp_path / "one.bak")).exit_code == 0
    cli("users", "add", "b@example.com", "--password", "Password-123")
    assert user_count(crm) == 3
    crm.close()
    restored = cli("db", "restore", str(tmp_path / "one.bak"), "--yes")
    assert restored.exit_code == 0, restored.output
    assert user_count(crm) == 2
    listing = cli("users", "list", "--format", "json").stdout
    assert "a@example.com" in listing and "b@example.com" not in listing


def test_backup_refuses_to_overwrite(crm, cli, tmp_path):
    (tmp_path / "exists.bak").write_text("x")
    result = cli("db", "backup", str(tmp_path / "exists.bak"))
    assert result.exit_code == 1 and "already exists" in result.output


def test_restore_of_a_non_backup_changes_nothing(crm, cli, tmp_path):
    junk = tmp_path / "junk.bak"
    junk.write_bytes(b"this is not a database" * 100)
    result = cli("db", "restore", str(junk), "--yes")
    assert result.exit_code == 1 and "not" in result.output
    assert user_count(crm) == 1
