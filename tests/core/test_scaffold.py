"""``crm plugins new``: the package it writes, the names and folders it refuses, and that the
package lints clean, migrates to exactly its models and passes its own tests (run by pytest in
a subprocess, with the package importable and its entry point visible, as after ``pip install``).
The wheel-and-fresh-venv path is in ``test_scaffold_wheel.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.scaffold import NAME_MAX, TEMPLATE, ScaffoldError, create_plugin
from tests.dist_kit import installed_like_pip, run_plugin_tests

ROOT = Path(__file__).resolve().parents[2]
LONGEST = "n" + "o" * (NAME_MAX - 1)

EXPECTED_FILES = {
    "README.md",
    "pyproject.toml",
    "crm_field_notes/__init__.py",
    "crm_field_notes/checks.py",
    "crm_field_notes/commands.py",
    "crm_field_notes/events.py",
    "crm_field_notes/migrations/field_notes_0001_initial.py",
    "crm_field_notes/models.py",
    "crm_field_notes/notes.py",
    "crm_field_notes/permissions.py",
    "crm_field_notes/routes.py",
    "crm_field_notes/slots.py",
    "crm_field_notes/templates/slot.html",
    "crm_field_notes/views.py",
    "tests/test_field_notes.py",
}


def crm(*args: str):
    """``crm ARGS`` in-process; no database is involved."""
    from cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def files_under(root: Path) -> set[str]:
    """Every file below ``root``, as POSIX paths relative to it."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --- the command ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["plugins", "plugin"])
def test_new_writes_a_complete_package_in_the_given_folder(tmp_path, command):
    target = tmp_path / "work" / "notes-plugin"
    result = crm(command, "new", "field_notes", "--dir", str(target))
    assert result.exit_code == 0, result.output
    assert f"Created {target}" in result.output
    assert "crm modules enable field_notes" in result.output
    assert files_under(target) == EXPECTED_FILES
    pyproject = (target / "pyproject.toml").read_text(encoding="utf-8")
    assert 'name = "crm-field-notes"' in pyproject
    assert 'version = "0.1.0"' in pyproject
    assert '"crm-suite>=0.1,<1"' in pyproject
    assert '[project.entry-points."crm.plugins"]\nfield_notes = "crm_field_notes"' in pyproject
    assert 'crm_modules = ["field_notes"]' in pyproject
    migration = target / "crm_field_notes/migrations/field_notes_0001_initial.py"
    text = migration.read_text(encoding="utf-8")
    assert 'revision = "field_notes_0001"' in text
    assert 'branch_labels = ("field_notes",)' in text


def test_new_defaults_to_crm_name_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = crm("plugins", "new", "field_notes")
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["crm-field-notes"]
    assert files_under(tmp_path / "crm-field-notes") == EXPECTED_FILES


def test_an_existing_empty_folder_is_used(tmp_path):
    target = tmp_path / "empty"
    target.mkdir()
    assert create_plugin("field_notes", target) == target
    assert files_under(target) == EXPECTED_FILES


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Loyalty", "lower-case letters"),
        ("9lives", "starting with a letter"),
        ("x", f"2-{NAME_MAX} lower-case"),
        ("n" * 41, f"2-{NAME_MAX} lower-case"),
        (LONGEST + "x", f"at most {NAME_MAX} so that its migrations' ids"),
        ("my-plugin", "lower-case letters, digits or '_'"),
        ("", f"2-{NAME_MAX} lower-case"),
        ("class", "a Python keyword"),
        ("core", "taken by the core"),
        ("users", "taken by the core (`crm users`)"),
        ("plugin", "taken by the core"),
        ("operational", "already installed"),
    ],
)
def test_bad_names_are_refused_and_nothing_is_written(tmp_path, monkeypatch, name, reason):
    monkeypatch.chdir(tmp_path)
    result = crm("plugins", "new", name)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: plugin name {name!r}: ")
    assert reason in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_folder_in_use_is_refused_and_left_as_it_was(tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine", encoding="utf-8")
    result = crm("plugins", "new", "field_notes", "--dir", str(target))
    assert result.exit_code == 1
    assert result.stderr == (f"Error: directory {target}: not empty; choose another with --dir\n")
    assert files_under(target) == {"notes.txt"}
    assert (target / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_a_file_in_the_way_is_refused(tmp_path):
    target = tmp_path / "crm-field-notes"
    target.write_text("", encoding="utf-8")
    with pytest.raises(ScaffoldError, match="a file is in the way"):
        create_plugin("field_notes", target)
    assert target.read_text(encoding="utf-8") == ""
    result = crm("plugins", "new", "field_notes", "--dir", str(target))
    assert result.exit_code == 2  # click refuses a file for --dir before the command runs
    assert "is a file" in result.output


@pytest.mark.parametrize("exists", [False, True])
def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch, exists):
    target = tmp_path / "plugin"
    if exists:
        target.mkdir()
    real_write = Path.write_text
    written: list[Path] = []

    def disk_full_after_three(self: Path, *args, **kwargs):
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        written.append(self)
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full_after_three)
    with pytest.raises(OSError, match="No space left"):
        create_plugin("field_notes", target)
    assert len(written) == 3
    assert target.exists() is exists
    assert not exists or list(target.iterdir()) == []


def test_every_template_file_ends_in_tmpl():
    # anything else would be packaged, collected or linted as code of the product itself
    others = [p for p in TEMPLATE.rglob("*") if p.is_file() and p.suffix != ".tmpl"]
    assert others == []


# --- the generated code -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ab", "field_notes", LONGEST])
def test_the_generated_code_passes_ruff(tmp_path, name):
    root = create_plugin(name, tmp_path / "plugin")
    for args in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr


MIGRATE = """
import json, sys
from sqlalchemy import inspect
from core import modules
from core.bootstrap import initialise
from core.runtime import Crm
from tests.schema_diff import module_diffs

name = sys.argv[1]
crm = Crm.from_env()
initialise(crm, "admin@example.com", "Admin-pass-123")
modules.enable(crm, [name])
table = inspect(crm.db.engine).get_columns(f"{name}_note")
diffs = module_diffs(crm.db.engine, f"{name}_")
modules.uninstall(crm, name)
left = [t for t in inspect(crm.db.engine).get_table_names() if t.startswith(f"{name}_")]
print(json.dumps({"columns": [c["name"] for c in table], "diffs": [repr(d) for d in diffs],
                  "left": left}))
"""


def test_the_migration_creates_exactly_the_model_and_uninstalls(tmp_path, db_url):
    # the longest name fills the 32 characters of Alembic's revision column
    root = create_plugin(LONGEST, tmp_path / "plugin")
    env = installed_like_pip(root, LONGEST, tmp_path / "site")
    env["PYTHONPATH"] += os.pathsep + str(ROOT)  # for tests.schema_diff
    env.update(
        CRM_DATABASE_URL=db_url,
        CRM_SECRET_KEY="test-secret-key-0123456789abcdef0123456789",
        CRM_LOAD_PLUGINS=LONGEST,
        CRM_BACKUP_DIR=str(tmp_path / "backups"),
    )
    done = subprocess.run(
        [sys.executable, "-c", MIGRATE, LONGEST],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["columns"] == [
        "id",
        "customer_id",
        "title",
        "body",
        "owner_id",
        "created_at",
        "version",
    ]
    assert report["diffs"] == []
    assert report["left"] == []


def test_the_generated_tests_pass(tmp_path, db_url):
    root = create_plugin("field_notes", tmp_path / "plugin")
    run_plugin_tests(root, "field_notes", tmp_path / "site", db_url)
