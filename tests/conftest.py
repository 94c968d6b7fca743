"""Shared fixtures: a database per test on SQLite and PostgreSQL, a CRM, the CLI, test plugins.

PostgreSQL tests use the server at ``CRM_TEST_POSTGRES_URL`` (an admin URL such as
``postgresql://postgres@127.0.0.1:5432/postgres``) and create a database per test. Without that
variable they are skipped, unless ``CRM_REQUIRE_POSTGRES=1`` (set by CI), which makes them fail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEST_SECRET = "test-secret-key-0123456789abcdef0123456789"


@pytest.fixture(autouse=True, scope="session")
def _light_password_hashing():
    """Argon2 with its lightest parameters inside the test process.

    The product hashes with pwdlib's recommended Argon2 parameters (about 0.13 s per hash, on
    purpose); tests create and sign in hundreds of users, which made hashing a large share of
    the suite's time. The algorithm and code paths stay the same; servers and commands that
    tests start as separate processes keep the real parameters.
    """
    from core import auth
    from core.testing import light_hasher

    original = auth._hasher
    auth._hasher = light_hasher
    yield
    auth._hasher = original


#: Every hook some implementation of which ran in this test process (see ``_record_hook_calls``).
EXERCISED_HOOKS: set[str] = set()
#: The test that checks every documented hook ran; it runs last, and only in a full run.
HOOK_COVERAGE_TEST = "test_every_documented_hook_is_exercised_by_the_suite"


@pytest.fixture(autouse=True, scope="session")
def _record_hook_calls():
    """Record which hooks the suite calls, through the registry's single calling point."""
    from core.plugins import PluginRegistry

    original = PluginRegistry._call

    def recording(self, hook, impl, kwargs):
        EXERCISED_HOOKS.add(hook)
        return original(self, hook, impl, kwargs)

    PluginRegistry._call = recording
    yield
    PluginRegistry._call = original


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the hook coverage test last, and only when the whole suite runs.

    A run of some files or some tests (``-k``, ``-m``, paths) cannot tell whether a hook is
    tested, so the coverage test is deselected there, not skipped.
    """
    coverage = [item for item in items if item.name == HOOK_COVERAGE_TEST]
    if not coverage:
        return
    tests_root = Path(__file__).resolve().parent
    every_file = {p.resolve() for p in tests_root.rglob("test_*.py")}
    collected = {Path(str(item.fspath)).resolve() for item in items}
    filtered = bool(config.option.keyword or config.option.markexpr)
    for item in coverage:
        items.remove(item)
    if filtered or not every_file <= collected:
        config.hook.pytest_deselected(items=coverage)
        return
    items.extend(coverage)


TEST_PLUGINS = {
    "sample": "crm_testplugins.sample",
    "sample_dep": "crm_testplugins.sample_dep",
    "broken_import": "crm_testplugins.broken_import",
    "bad_manifest": "crm_testplugins.bad_manifest",
    "cycle_a": "crm_testplugins.cycle_a",
    "cycle_b": "crm_testplugins.cycle_b",
    "failing_migration": "crm_testplugins.failing_migration",
    "crash": "crm_testplugins.crash",
    "noisy": "crm_testplugins.noisy",
    "future_core": "crm_testplugins.future_core",
    "rogue": "crm_testplugins.rogue",
    "growing": "crm_testplugins.growing",
    "loyal": "crm_testplugins.loyal",
    "uiext": "crm_testplugins.uiext",
    "shadowed": "crm_testplugins.shadowed",
    "hooked": "crm_testplugins.hooked",
    "faulty": "crm_testplugins.faulty",
    "watcher": "crm_testplugins.watcher",
    "loose": "crm_testplugins.loose",
}


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site folder holding a real distribution whose entry points declare the test plugins.

    It is put on ``sys.path`` (and on ``PYTHONPATH`` for subprocesses) so that
    ``importlib.metadata`` finds the entry points as it finds any installed plugin's.
    """
    site = tmp_path_factory.mktemp("site")
    dist = site / "crm_test_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: crm-test-plugins\nVersion: 1.0\n", encoding="utf-8"
    )
    lines = ["[crm.plugins]", *(f"{name} = {target}" for name, target in TEST_PLUGINS.items())]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for path in (str(FIXTURES), str(site)):
        if path not in sys.path:
            sys.path.insert(0, path)
    return site


def _postgres_admin_url() -> str | None:
    return os.environ.get("CRM_TEST_POSTGRES_URL")


def postgres_url_or_skip(url: str | None, required: bool | None = None) -> str:
    """``url`` (a PostgreSQL admin URL); without one, skip the test locally, fail it where a
    server must be there (``required``, by default ``CRM_REQUIRE_POSTGRES=1``, set by CI)."""
    if url:
        return url
    if required is None:
        required = os.environ.get("CRM_REQUIRE_POSTGRES") == "1"
    if required:
        pytest.fail("CRM_REQUIRE_POSTGRES=1 but CRM_TEST_POSTGRES_URL is not set")
    pytest.skip("PostgreSQL not configured locally (set CRM_TEST_POSTGRES_URL)")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crm.db'}"
        return
    from core.testing import postgres_database

    with postgres_database(postgres_url_or_skip(_postgres_admin_url())) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An SQLite database URL, for tests about SQLite itself."""
    return f"sqlite:///{tmp_path / 'crm.db'}"


@pytest.fixture
def crm_env(db_url: str, tmp_path: Path, plugin_site: Path, monkeypatch) -> dict[str, str]:
    """Environment variables for a CRM on ``db_url`` with only the ``sample`` plugin loaded.

    The process environment is set too, so code reading ``os.environ`` sees the same.
    """
    env = {
        "CRM_DATABASE_URL": db_url,
        "CRM_SECRET_KEY": TEST_SECRET,
        "CRM_BACKUP_DIR": str(tmp_path / "backups"),
        "CRM_LOAD_PLUGINS": "sample",
        "CRM_CONFIG": "",
    }
    for key in [k for k in os.environ if k.startswith("CRM_") and k not in env]:
        if key not in ("CRM_TEST_POSTGRES_URL", "CRM_REQUIRE_POSTGRES"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CRM_CONFIG")
    monkeypatch.chdir(tmp_path)
    return env


@pytest.fixture
def make_crm(crm_env: dict[str, str]):
    """Build a ``Crm`` from the test environment, with optional overrides."""
    from core.runtime import Crm
    from core.settings import load_settings

    made = []

    def factory(**overrides: str):
        env = {**crm_env, **{f"CRM_{k.upper()}": v for k, v in overrides.items()}}
        env.pop("CRM_CONFIG", None)
        crm = Crm(load_settings(environ=env))
        made.append(crm)
        return crm

    yield factory
    for crm in made:
        crm.close()


@pytest.fixture
def crm(make_crm):
    """An initialised CRM (core schema and an admin) with the ``sample`` plugin loaded."""
    from core.bootstrap import initialise

    instance = make_crm()
    initialise(instance, "admin@example.com", "Admin-pass-123")
    return instance


class Cli:
    """Runs ``crm`` in-process with click's runner, or as a real subprocess."""

    def __init__(self, env: dict[str, str], site: Path, cwd: Path) -> None:
        self.env, self.site, self.cwd = env, site, cwd

    def __call__(self, *args: str, input: str | None = None, **env: str):
        """Invoke in-process; returns click's ``Result``."""
        from cli import cli

        merged = {**self.env, **env}
        return CliRunner().invoke(cli, list(args), env=merged, input=input, catch_exceptions=False)

    def run(self, *args: str, check: bool = False, **env: str) -> subprocess.CompletedProcess:
        """Run ``crm`` as a subprocess with the test plugins importable."""
        merged = {**os.environ, **self.env, **env}
        merged["PYTHONPATH"] = os.pathsep.join([str(FIXTURES), str(self.site), str(ROOT)])
        return subprocess.run(
            [sys.executable, "-c", "import cli; cli.main()", *args],
            env=merged,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )


@pytest.fixture
def cli(crm_env: dict[str, str], plugin_site: Path, tmp_path: Path) -> Cli:
    """The ``crm`` command against the test database."""
    return Cli(crm_env, plugin_site, tmp_path)


class Server:
    """A ``crm serve`` process on a free loopback port."""

    def __init__(self, cli: Cli, *args: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {
            **os.environ,
            **cli.env,
            "PYTHONPATH": os.pathsep.join([str(FIXTURES), str(cli.site), str(ROOT)]),
        }
        self.base = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import cli; cli.main()", "serve", "--port", str(port), *args],
            env=env,
            cwd=cli.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        import httpx

        for _ in range(150):
            try:
                httpx.get(f"{self.base}/api/health", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("crm serve did not start")

    def stop(self) -> str:
        """Stop the server; return what it printed."""
        self.process.terminate()
        return self.process.communicate(timeout=20)[0]


@pytest.fixture
def serve(cli: Cli):
    """Start ``crm serve [ARGS]`` with ``serve(*args)``; stopped after the test."""
    started: list[Server] = []

    def start(*args: str) -> Server:
        started.append(Server(cli, *args))
        return started[-1]

    yield start
    for server in started:
        if server.process.poll() is None:
            server.stop()


@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) on loopback; ``smtp.url`` goes into ``CRM_SMTP_URL``."""
    from tests.smtp_kit import SmtpServer

    server = SmtpServer()
    server.start()
    yield server
    server.stop()
