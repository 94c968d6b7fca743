"""``core.testing``, the pytest plugin for plugin authors: each test here writes a small test
suite that uses the kit's fixtures, as a plugin's own tests would, and runs it with pytest in a
subprocess (the kit loads through its ``pytest11`` entry point), with the ``sample`` test
plugins installed through a dist-info folder on ``PYTHONPATH``."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import postgres_url_or_skip

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
CONTRACT_FIXTURES = (
    "crm_modules",
    "crm_database_url",
    "crm_settings",
    "crm_instance",
    "crm_admin",
    "crm_user_factory",
    "crm_app",
    "crm_api",
    "crm_api_for",
    "crm_web_for",
    "crm_cli",
)
#: The plugins installed for the inner runs: a module, one depending on it, and a broken one
#: (installed but failing to import, as a third party's may be).
ENTRY_POINTS = {
    "sample": "crm_testplugins.sample",
    "sample_dep": "crm_testplugins.sample_dep",
    "broken_import": "crm_testplugins.broken_import",
}


#: Read before the ``kit`` fixture clears every ``CRM_*`` variable for the inner runs.
POSTGRES_URL = os.environ.get("CRM_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("CRM_REQUIRE_POSTGRES") == "1"


def _postgres_url() -> str:
    return postgres_url_or_skip(POSTGRES_URL, REQUIRE_POSTGRES)


@pytest.fixture(scope="module")
def kit_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site folder whose dist-info declares the test plugins' entry points."""
    site = tmp_path_factory.mktemp("kit-site")
    dist = site / "crm_kit_test_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: crm-kit-test-plugins\nVersion: 1.0\n", encoding="utf-8"
    )
    lines = ["[crm.plugins]", *(f"{name} = {target}" for name, target in ENTRY_POINTS.items())]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return site


@pytest.fixture
def kit(pytester: pytest.Pytester, kit_site: Path, monkeypatch: pytest.MonkeyPatch):
    """``pytester`` whose subprocess runs see the test plugins and inherit no CRM settings."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FIXTURES), str(kit_site)]))
    for key in [k for k in os.environ if k.startswith("CRM_")]:
        monkeypatch.delenv(key)
    return pytester


def _postgres_env(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("CRM_TEST_POSTGRES_URL", url)


def _database_exists(admin_url: str, url: str) -> bool:
    import psycopg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


EVERY_FIXTURE = """
import json
import os
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect

from core.testing import TestUser

pytestmark = pytest.mark.crm_modules("sample")


def _record(url):
    with open("databases.txt", "a", encoding="utf-8") as fh:
        fh.write(url + "\\n")


def test_database_is_fresh_and_empty(crm_database_url):
    _record(crm_database_url)
    engine = create_engine(crm_database_url)
    try:
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        engine.dispose()


def test_only_the_chosen_modules_are_enabled(crm_instance, crm_cli):
    _record(crm_instance.settings.database_url)
    assert crm_instance.enabled_modules() == ["sample"]
    listed = crm_cli("modules", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    states = {m["name"]: m for m in json.loads(listed.stdout)}
    assert {n for n, m in states.items() if m["state"] == "installed"} == {"sample"}
    assert states["sample_dep"]["state"] == "uninstalled"
    assert states["broken_import"]["errors"], "the broken plugin is listed with its error"


def test_api_client_is_authenticated(crm_api, crm_app, crm_admin):
    me = crm_api.get("/api/me")
    assert me.status_code == 200
    assert me.json()["email"] == crm_admin.email == "admin@example.com"
    anonymous = TestClient(crm_app)
    assert anonymous.get("/api/me").status_code == 401
    assert anonymous.get("/api/sample/notes").status_code == 401
    assert crm_api.get("/api/sample/notes").status_code == 200
    assert crm_api.headers["Authorization"] == f"Bearer {crm_admin.token}"


def test_user_factory_roles_decide_permissions(crm_user_factory, crm_api_for, crm_api):
    seller = crm_user_factory()
    manager = crm_user_factory(("manager",), team="north")
    assert isinstance(seller, TestUser)
    assert (seller.email, seller.roles) == ("user1@example.com", ("sales",))
    assert (manager.email, manager.roles) == ("user2@example.com", ("manager",))
    assert manager.team == "north"
    assert crm_api_for(seller).get("/api/sample/notes").status_code == 200
    refused = crm_api_for(seller).post("/api/sample/notes", json={"text": "from a seller"})
    assert refused.status_code == 403
    made = crm_api_for(manager).post("/api/sample/notes", json={"text": "from a manager"})
    assert made.status_code == 201, made.text
    texts = [n["text"] for n in crm_api.get("/api/sample/notes").json()]
    assert texts == ["welcome", "from a manager"]
    me = crm_api_for(manager).get("/api/me").json()
    assert me["email"] == "user2@example.com" and me["roles"] == ["manager"]


def test_user_factory_options(crm_user_factory, crm_instance):
    boss = crm_user_factory(
        ("manager", "analyst"),
        email="Boss@Example.com",
        password="Another-pass-99",
        team="North",
        name="The Boss",
    )
    mate = crm_user_factory("sales", team="north")
    assert boss.email == "boss@example.com" and set(boss.roles) == {"manager", "analyst"}
    assert (boss.name, boss.team, boss.password) == ("The Boss", "north", "Another-pass-99")
    assert boss.token == boss.token and boss.token.startswith("crm_")
    assert mate.team == "north"
    with pytest.raises(ValueError, match="unknown role"):
        crm_user_factory(("wizard",))
    with pytest.raises(ValueError, match="already exists"):
        crm_user_factory(email="boss@example.com")


def test_web_client_signed_in_loads_pages_and_posts_with_csrf(
    crm_web_for, crm_admin, crm_user_factory, crm_app, crm_api
):
    web = crm_web_for(crm_admin)
    home = web.get("/")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    assert "admin@example.com" in home.text or "Administrator" in home.text
    assert web.get("/admin/users").status_code == 200
    seller = crm_web_for(crm_user_factory())
    assert seller.get("/").status_code == 200
    assert seller.get("/admin/users").status_code == 403
    changed = seller.post("/account/language", {"language": "vi"}, follow_redirects=False)
    assert changed.status_code == 303
    bare = TestClient(crm_app, cookies=dict(seller.cookies))
    forged = bare.post(
        "/account/language",
        data={"language": "en"},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert forged.status_code == 403, "without the kit's CSRF token the post is refused"


def test_web_client_sees_the_changed_language(crm_web_for, crm_user_factory):
    seller = crm_web_for(crm_user_factory())
    assert seller.post("/account/language", {"language": "vi"}).status_code == 200
    assert 'lang="vi"' in seller.get("/account").text


def test_cli_in_process_and_subprocess_share_the_database(crm_cli):
    added = crm_cli("sample", "add", "from the cli")
    assert added.exit_code == 0, added.output
    counted = crm_cli.run("sample", "count")
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.strip() == "notes: 2"
    refused = crm_cli("modules", "enable", "no_such_module")
    assert refused.exit_code == 1
    assert "unknown module 'no_such_module'" in refused.output


def test_cli_changes_are_seen_by_the_instance(crm_cli, crm_instance):
    assert crm_cli("modules", "enable", "sample_dep").exit_code == 0
    assert crm_instance.enabled_modules() == ["sample", "sample_dep"]


def test_isolation_first(crm_cli, crm_instance):
    _record(crm_instance.settings.database_url)
    assert crm_cli("sample", "add", "only in the first test").exit_code == 0
    assert crm_cli("sample", "count").output.strip() == "notes: 2"


def test_isolation_second(crm_cli, crm_api):
    assert crm_cli("sample", "count").output.strip() == "notes: 1"
    assert [n["text"] for n in crm_api.get("/api/sample/notes").json()] == ["welcome"]


def test_environment_inside(crm_instance, crm_database_url):
    assert os.environ["CRM_DATABASE_URL"] == crm_database_url
    assert crm_instance.settings.database_url == crm_database_url
    assert "CRM_INHERITED" not in os.environ
    assert Path(os.environ["CRM_CONFIG"]).read_text() == ""
    assert crm_instance.settings.secret_key == os.environ["CRM_SECRET_KEY"]
    assert not crm_instance.settings.secret_key_is_default
    assert crm_instance.settings.webhooks_in_server is False


def test_environment_restored_and_no_threads_left():
    assert os.environ["CRM_INHERITED"] == "from the shell"
    assert not [k for k in os.environ if k in ("CRM_DATABASE_URL", "CRM_CONFIG", "CRM_SECRET_KEY")]
    assert threading.active_count() == 1, threading.enumerate()
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_every_fixture_in_a_plugin_suite(
    kit: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """A plugin's suite using every fixture passes, on SQLite and on PostgreSQL; each test had a
    database of its own, and the PostgreSQL ones are dropped afterwards."""
    args = ["-p", "no:cacheprovider", "--strict-markers"]
    if backend == "postgres":
        admin = _postgres_url()
        _postgres_env(monkeypatch, admin)
        args.append("--crm-db=postgres")
    monkeypatch.setenv("CRM_INHERITED", "from the shell")
    kit.makepyfile(test_plugin=EVERY_FIXTURE)
    result = kit.runpytest_subprocess(*args)
    result.assert_outcomes(passed=13)
    databases = (kit.path / "databases.txt").read_text(encoding="utf-8").split()
    assert len(databases) == len(set(databases)) == 3
    scheme = "sqlite:///" if backend == "sqlite" else "postgresql+psycopg://"
    assert all(url.startswith(scheme) for url in databases)
    if backend == "postgres":
        assert not [url for url in databases if _database_exists(admin, url)]


def test_postgres_chosen_by_environment(kit: pytest.Pytester, monkeypatch) -> None:
    """``CRM_TEST_DATABASE=postgres`` chooses PostgreSQL as ``--crm-db=postgres`` does."""
    _postgres_env(monkeypatch, _postgres_url())
    monkeypatch.setenv("CRM_TEST_DATABASE", "postgres")
    kit.makepyfile(
        """
        def test_on_postgres(crm_instance, crm_api):
            assert crm_instance.settings.database_url.startswith("postgresql+psycopg://")
            assert crm_api.get("/api/me").status_code == 200
        """
    )
    kit.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_modules_from_ini_marker_or_fixture(kit: pytest.Pytester) -> None:
    """The ini option chooses (dependencies come along), a marker overrides it (class and
    function markers, the closest wins; an empty marker enables none), and so does a fixture."""
    kit.makeini("[pytest]\ncrm_modules = sample_dep\n")
    kit.makepyfile(
        test_choice="""
        import pytest

        def test_from_ini(crm_instance, crm_modules):
            assert crm_modules == ["sample_dep"]
            assert crm_instance.enabled_modules() == ["sample", "sample_dep"]

        @pytest.mark.crm_modules()
        def test_empty_marker_enables_none(crm_instance):
            assert crm_instance.enabled_modules() == []

        @pytest.mark.crm_modules("sample")
        class TestMarked:
            def test_class_marker(self, crm_instance):
                assert crm_instance.enabled_modules() == ["sample"]

            @pytest.mark.crm_modules("sample, sample_dep")
            def test_function_marker_wins(self, crm_modules):
                assert crm_modules == ["sample", "sample_dep"]
        """,
        test_override="""
        import pytest

        @pytest.fixture
        def crm_modules():
            return ["sample"]

        def test_overridden(crm_instance):
            assert crm_instance.enabled_modules() == ["sample"]
        """,
    )
    kit.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers").assert_outcomes(passed=5)


def test_modules_from_pyproject_list(kit: pytest.Pytester) -> None:
    """``crm_modules = ["sample"]`` under ``[tool.pytest.ini_options]`` works as a TOML list."""
    kit.makepyprojecttoml('[tool.pytest.ini_options]\ncrm_modules = ["sample"]\n')
    kit.makepyfile(
        """
        def test_from_pyproject(crm_instance):
            assert crm_instance.enabled_modules() == ["sample"]
        """
    )
    kit.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_settings_fixture_reaches_settings_env_and_hooks(kit: pytest.Pytester) -> None:
    """``crm_settings`` sets core and extra ``CRM_*`` variables; the ``user_created`` event of
    an enabled module fires for users the factory makes."""
    kit.makeconftest(
        """
        import pytest

        @pytest.fixture
        def crm_settings(tmp_path):
            return {"default_currency": "eur", "CRM_TEST_EVENTS": str(tmp_path / "events.log")}
        """
    )
    kit.makepyfile(
        """
        import os
        from pathlib import Path

        import pytest

        @pytest.mark.crm_modules("sample")
        def test_settings(crm_instance, crm_user_factory):
            assert crm_instance.settings.default_currency == "EUR"
            assert os.environ["CRM_DEFAULT_CURRENCY"] == "eur"
            crm_user_factory(email="new@example.com")
            lines = Path(os.environ["CRM_TEST_EVENTS"]).read_text().splitlines()
            assert lines == ["post_install sample", "user_created new@example.com"]
        """
    )
    kit.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_bad_choices_fail_with_a_clear_message(kit: pytest.Pytester) -> None:
    """An unknown module, a bad setting or a bad database choice is an error naming it."""
    kit.makepyfile(
        """
        import pytest

        @pytest.mark.crm_modules("no_such_module")
        def test_unknown_module(crm_instance):
            pass

        @pytest.mark.crm_modules("broken_import")
        def test_broken_module(crm_instance):
            pass

        @pytest.mark.parametrize("crm_settings", [{"default_currency": "euro"}])
        def test_bad_setting(crm_instance):
            pass

        @pytest.mark.parametrize("crm_settings", [{"CRM_TEST_POSTGRES_URL": "x"}])
        def test_database_choice_is_not_a_setting(crm_instance):
            pass
        """
    )
    result = kit.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(
        [
            "*crm_modules: cannot enable no_such_module: unknown module 'no_such_module'*",
            "*crm_modules: cannot enable broken_import: module 'broken_import' cannot be enabled*",
            "*crm_settings: CRM_DEFAULT_CURRENCY: 'euro' is not a three-letter*",
            "*crm_settings: CRM_TEST_POSTGRES_URL chooses the test database*",
        ],
        consecutive=False,
    )


def test_postgres_without_a_server_url_is_an_error(kit: pytest.Pytester, monkeypatch) -> None:
    """Asking for PostgreSQL without ``CRM_TEST_POSTGRES_URL`` fails (never silently SQLite),
    and an unknown ``CRM_TEST_DATABASE`` is named."""
    kit.makepyfile(
        """
        def test_needs_a_database(crm_database_url):
            pass
        """
    )
    result = kit.runpytest_subprocess("-p", "no:cacheprovider", "--crm-db=postgres")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CRM_TEST_POSTGRES_URL is not set*"])
    monkeypatch.setenv("CRM_TEST_DATABASE", "oracle")
    result = kit.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CRM_TEST_DATABASE='oracle': expected one of sqlite, postgres*"])
    result = kit.runpytest_subprocess("-p", "no:cacheprovider", "--crm-db=oracle")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_every_fixture_is_documented(kit: pytest.Pytester) -> None:
    """``pytest --fixtures`` lists every fixture of the contract with its docstring, and the
    ``--crm-db`` option and ``crm_modules`` ini option appear in ``pytest --help``."""
    listing = kit.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider").stdout.str()
    for name in CONTRACT_FIXTURES:
        block = listing.split(f"\n{name} -- ", 1)
        assert len(block) == 2, f"{name} is not listed"
        doc = block[1].splitlines()[1]
        assert doc.startswith("    ") and doc.strip(), f"{name} has no docstring"
    helped = kit.runpytest_subprocess("--help").stdout.str()
    assert "--crm-db={sqlite,postgres}" in helped
    assert "crm_modules (linelist)" in helped


def test_importing_the_kit_stays_light() -> None:
    """The kit loads in every pytest run where the CRM is installed: it imports no database,
    web or CLI library until a fixture is used."""
    probe = (
        "import sys, core.testing; "
        "print(sorted(m for m in ('sqlalchemy', 'fastapi', 'click', 'core.runtime', 'httpx')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"


def test_no_fixture_name_clashes_with_our_suite() -> None:
    """Our own suite loads the kit too: no conftest of ours defines a fixture of the same name."""
    ours = set()
    for conftest in (ROOT / "tests").rglob("conftest.py"):
        tree = ast.parse(conftest.read_text(encoding="utf-8"))
        ours |= {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert ours, "the suite's conftest files were read"
    assert not ours & set(CONTRACT_FIXTURES)
