"""The testing kit for plugin authors: a pytest plugin shipped with the product.

Registered through the ``pytest11`` entry point, so its fixtures are available in any project
that has the CRM installed: a fresh database per test (SQLite, or PostgreSQL with
``--crm-db=postgres``), an initialised CRM with chosen modules enabled, users with roles, an
authenticated API client, a signed-in web client and the ``crm`` command. Guide: docs/testing.md.

This module is imported by every pytest run where the CRM is installed, so it imports only
pytest at import time; the product's modules are imported inside the fixtures.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from click.testing import Result
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from core.runtime import Crm

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Admin-pass-123"
USER_PASSWORD = "User-pass-12345"
SECRET_KEY = "crm-testing-kit-secret-key-0123456789abcdef"
BASE_URL = "http://testserver"
BACKENDS = ("sqlite", "postgres")
#: Variables that choose the test database; every other inherited ``CRM_*`` is cleared.
KEPT_ENV = ("CRM_TEST_POSTGRES_URL", "CRM_TEST_DATABASE", "CRM_REQUIRE_POSTGRES")
_MODULE_NAME_SPLIT = re.compile(r"[\s,]+")


def _setup_error(message: str) -> BaseException:
    """The error a fixture raises for a bad choice: the message alone, without a traceback."""
    return pytest.fail.Exception(message, pytrace=False)


# --- pytest hooks -----------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--crm-db`` and the ``crm_modules`` ini option."""
    group = parser.getgroup("crm", "CRM testing kit (core.testing)")
    group.addoption(
        "--crm-db",
        dest="crm_db",
        choices=BACKENDS,
        default=None,
        help="database for the crm_* fixtures: sqlite (default) or postgres, which creates a"
        " database per test on the server at CRM_TEST_POSTGRES_URL (env CRM_TEST_DATABASE"
        " chooses too)",
    )
    parser.addini(
        "crm_modules",
        type="linelist",
        default=[],
        help="modules the crm_instance fixture enables (with their dependencies) unless a"
        " test's crm_modules marker names others",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``crm_modules`` marker."""
    config.addinivalue_line(
        "markers",
        "crm_modules(*names): modules the crm_instance fixture enables for this test"
        " (instead of the crm_modules ini option); no names: none",
    )


# --- users --------------------------------------------------------------------------------


@dataclass
class TestUser:
    """A user created for a test: sign in with ``email`` and ``password``, or use ``token``."""

    __test__ = False  # a helper, not a test class for pytest to collect

    id: int
    email: str
    password: str
    roles: tuple[str, ...]
    name: str = ""
    team: str | None = None
    _issue_token: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    _token: str | None = field(default=None, repr=False, compare=False)

    @property
    def token(self) -> str:
        """An API token of this user (created on first use, then the same one)."""
        if self._token is None:
            if self._issue_token is None:
                raise RuntimeError(f"no CRM to create an API token for {self.email} in")
            self._token = self._issue_token()
        return self._token


def _token_issuer(crm: Crm, user_id: int) -> Callable[[], str]:
    def issue() -> str:
        from core import auth
        from core.models import User

        with crm.db.write() as session:
            return auth.create_token(session, session.get(User, user_id), "pytest").secret

    return issue


@functools.cache
def light_hasher() -> Any:
    """Argon2 with its lightest parameters, for test processes only: the product's code paths
    stay the same, hashing hundreds of test passwords stops dominating a suite's time."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    return PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))


# --- database and CRM -------------------------------------------------------------------------


def _backend(config: pytest.Config) -> str:
    chosen = config.getoption("crm_db", None) or os.environ.get("CRM_TEST_DATABASE") or "sqlite"
    if chosen not in BACKENDS:
        pytest.fail(
            f"CRM_TEST_DATABASE={chosen!r}: expected one of {', '.join(BACKENDS)}", pytrace=False
        )
    return chosen


def _postgres_database(admin_url: str) -> tuple[str, str, str]:
    """(admin URL for psycopg, new database's name, its SQLAlchemy URL)."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(admin_url)
    except Exception as exc:  # SQLAlchemy's ArgumentError, or ValueError for a bad port
        raise _setup_error(f"CRM_TEST_POSTGRES_URL is not a database URL: {exc}") from None
    if url.get_backend_name() != "postgresql":
        pytest.fail(
            f"CRM_TEST_POSTGRES_URL must be a postgresql:// URL, got {url.drivername}://",
            pytrace=False,
        )
    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    new = url.set(drivername="postgresql+psycopg", database=name)
    return admin, name, new.render_as_string(hide_password=False)


@pytest.fixture
def crm_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty database for this test, as a SQLAlchemy URL.

    An SQLite file in a temporary folder by default. With ``--crm-db=postgres`` (or
    ``CRM_TEST_DATABASE=postgres``) a new database on the PostgreSQL server whose admin URL is in
    ``CRM_TEST_POSTGRES_URL``, dropped after the test.
    """
    if _backend(request.config) == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('crm-db') / 'crm.db'}"
        return
    admin_url = os.environ.get("CRM_TEST_POSTGRES_URL")
    if not admin_url:
        pytest.fail(
            "the crm_* fixtures were asked for PostgreSQL (--crm-db=postgres or"
            " CRM_TEST_DATABASE=postgres) but CRM_TEST_POSTGRES_URL is not set; set it to an"
            " admin URL such as postgresql://postgres:secret@127.0.0.1:5432/postgres",
            pytrace=False,
        )
    with postgres_database(admin_url) as url:
        yield url


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server at ``admin_url`` (its SQLAlchemy URL),
    dropped when the block ends; a bad URL or a server refusing fails the test saying so."""
    import psycopg

    admin, name, url = _postgres_database(admin_url)
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        message = f"cannot create a test database with CRM_TEST_POSTGRES_URL: {exc}"
        raise _setup_error(message.strip()) from None
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def crm_modules(request: pytest.FixtureRequest) -> list[str]:
    """The modules ``crm_instance`` enables (their dependencies come along).

    From the test's ``@pytest.mark.crm_modules("a", "b")`` marker (the closest one: function,
    class, then module), else the ``crm_modules`` ini option, else none. Override this fixture
    in a ``conftest.py`` to choose them in code.
    """
    marker = request.node.get_closest_marker("crm_modules")
    names = marker.args if marker is not None else request.config.getini("crm_modules")
    chosen: list[str] = []
    for entry in names:
        if not isinstance(entry, str):
            pytest.fail(f"crm_modules: module names are strings, got {entry!r}", pytrace=False)
        chosen.extend(part for part in _MODULE_NAME_SPLIT.split(entry) if part)
    return list(dict.fromkeys(chosen))


@pytest.fixture
def crm_settings() -> dict[str, Any]:
    """Extra settings for ``crm_instance``: ``{"CRM_DEFAULT_CURRENCY": "EUR"}`` (or
    ``{"default_currency": "EUR"}``; module settings as ``CRM_<MODULE>_<NAME>``). Empty by
    default; override it in a ``conftest.py`` or with ``@pytest.mark.parametrize``. A value of
    ``None`` leaves the variable unset."""
    return {}


def _setting_env(settings: Mapping[str, Any]) -> dict[str, str | None]:
    env: dict[str, str | None] = {}
    for key, value in settings.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", key):
            pytest.fail(f"crm_settings: {key!r} is not a setting name", pytrace=False)
        name = key.upper() if key.upper().startswith("CRM_") else f"CRM_{key.upper()}"
        if name in KEPT_ENV:
            pytest.fail(
                f"crm_settings: {name} chooses the test database; set it in the shell",
                pytrace=False,
            )
        if value is None:
            env[name] = None
        elif isinstance(value, bool):
            env[name] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            env[name] = ",".join(str(item) for item in value)
        else:
            env[name] = str(value)
    return env


@pytest.fixture
def crm_instance(
    crm_database_url: str,
    crm_modules: list[str],
    crm_settings: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Crm]:
    """An initialised CRM on ``crm_database_url`` with ``crm_modules`` enabled.

    The core schema and an administrator (``crm_admin``) exist; every installed plugin is
    loaded, only ``crm_modules`` (and their dependencies) are enabled. The process environment
    says the same (``CRM_DATABASE_URL``, ``CRM_SECRET_KEY``, ``CRM_CONFIG`` naming an empty
    file, ``CRM_BACKUP_DIR`` in a temporary folder, ``CRM_WEBHOOKS_IN_SERVER=false``,
    ``crm_settings``; other inherited ``CRM_*`` variables cleared) and is restored after the
    test. Passwords are hashed with Argon2's lightest parameters in this process, for speed.
    """
    from core import auth, modules
    from core.bootstrap import initialise
    from core.errors import CrmError
    from core.runtime import Crm
    from core.settings import load_settings

    home = tmp_path_factory.mktemp("crm")
    config = home / "crm.toml"
    config.write_text("", encoding="utf-8")
    for key in [k for k in os.environ if k.startswith("CRM_") and k not in KEPT_ENV]:
        monkeypatch.delenv(key)
    env: dict[str, str | None] = {
        "CRM_DATABASE_URL": crm_database_url,
        "CRM_SECRET_KEY": SECRET_KEY,
        "CRM_CONFIG": str(config),
        "CRM_BACKUP_DIR": str(home / "backups"),
        # no delivery thread outliving the test; `crm_cli("webhooks", "deliver")` sends instead
        "CRM_WEBHOOKS_IN_SERVER": "false",
        **_setting_env(crm_settings),
    }
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    monkeypatch.setattr(auth, "_hasher", light_hasher)

    try:
        crm = Crm(load_settings())
    except CrmError as exc:
        raise _setup_error(f"crm_settings: {exc}") from None
    try:
        initialise(crm, ADMIN_EMAIL, ADMIN_PASSWORD)
        if crm_modules:
            try:
                modules.enable(crm, crm_modules)
            except CrmError as exc:
                names = ", ".join(crm_modules)
                raise _setup_error(f"crm_modules: cannot enable {names}: {exc}") from None
            crm.refresh()
        yield crm
    finally:
        crm.close()


@pytest.fixture
def crm_admin(crm_instance: Crm) -> TestUser:
    """The administrator ``crm_instance`` was initialised with (role ``admin``)."""
    from sqlalchemy import select

    from core.models import User

    with crm_instance.db.session() as session:
        user_id = session.scalar(select(User.id).where(User.email == ADMIN_EMAIL))
    return TestUser(
        id=user_id,
        email=ADMIN_EMAIL,
        password=ADMIN_PASSWORD,
        roles=("admin",),
        name="Administrator",
        _issue_token=_token_issuer(crm_instance, user_id),
    )


@pytest.fixture
def crm_user_factory(crm_instance: Crm) -> Callable[..., TestUser]:
    """Create users: ``crm_user_factory(roles=("sales",), *, email=None, password=None,
    team=None, name=None) -> TestUser``.

    Roles are role names (``admin``, ``manager``, ``sales``, ``service``, ``marketing``,
    ``analyst``, and those modules declare); ``team`` is a team name, created if missing. The
    e-mail defaults to ``user1@example.com``, ``user2@``...; the ``user_created`` event fires as
    when ``crm users add`` creates a user.
    """
    from sqlalchemy import select

    from core import events, users
    from core.models import Team

    numbers = itertools.count(1)

    def create(
        roles: tuple[str, ...] | list[str] = ("sales",),
        *,
        email: str | None = None,
        password: str | None = None,
        team: str | None = None,
        name: str | None = None,
    ) -> TestUser:
        """A new active user with ``roles``."""
        if isinstance(roles, str):
            roles = (roles,)
        address = email or f"user{next(numbers)}@example.com"
        secret = password or USER_PASSWORD
        with crm_instance.db.write() as session:
            user = users.create_user(
                session, address, name or address.split("@")[0].title(), secret, roles
            )
            team_name = None
            if team is not None:
                group = session.scalar(select(Team).where(Team.name == team.strip().lower()))
                group = group or users.add_team(session, team)
                users.set_team(session, user, group)
                team_name = group.name
            events.emit(session, crm_instance, "user_created", user=user)
            made = TestUser(
                id=user.id,
                email=user.email,
                password=secret,
                roles=tuple(user.role_names),
                name=user.name,
                team=team_name,
                _issue_token=_token_issuer(crm_instance, user.id),
            )
        return made

    return create


# --- web ------------------------------------------------------------------------------------


@pytest.fixture
def crm_app(crm_instance: Crm) -> FastAPI:
    """The web application (API and staff UI) of ``crm_instance``."""
    from core.web.app import create_app

    return create_app(crm_instance)


@pytest.fixture
def crm_api_for(crm_app: FastAPI) -> Iterator[Callable[[TestUser], TestClient]]:
    """``crm_api_for(user)``: an API client (FastAPI's ``TestClient``) sending ``user``'s token
    as ``Authorization: Bearer ...``, e.g. ``crm_api_for(user).get("/api/me")``."""
    from fastapi.testclient import TestClient

    clients: list[TestClient] = []

    def make(user: TestUser) -> TestClient:
        """A client authenticated as ``user``."""
        client = TestClient(
            crm_app, base_url=BASE_URL, headers={"Authorization": f"Bearer {user.token}"}
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def crm_api(crm_api_for: Callable[[TestUser], TestClient], crm_admin: TestUser) -> TestClient:
    """An API client authenticated as the administrator (``crm_admin``) with a bearer token."""
    return crm_api_for(crm_admin)


@functools.cache
def _web_client_class() -> type:
    from fastapi.testclient import TestClient

    from core.web.ui.context import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER

    class WebClient(TestClient):
        """A ``TestClient`` that behaves like a signed-in browser: it asks for HTML and sends
        the CSRF token and the page's origin with every state-changing request."""

        def csrf_token(self) -> str:
            """The CSRF token the pages carry (fetching the sign-in page for one if needed)."""
            token = self.cookies.get(CSRF_COOKIE)
            if token is None:
                super().request("GET", "/login")
                token = self.cookies.get(CSRF_COOKIE)
            if token is None:
                raise RuntimeError("the sign-in page set no CSRF cookie")
            return token

        def request(self, method: str, url: Any, **kwargs: Any) -> Any:
            """Send the request; unsafe methods carry the CSRF token and origin headers."""
            if method.upper() not in ("GET", "HEAD", "OPTIONS"):
                headers = {
                    "Origin": BASE_URL,
                    CSRF_HEADER: self.csrf_token(),
                    **dict(kwargs.pop("headers", None) or {}),
                }
                kwargs["headers"] = headers
            return super().request(method, url, **kwargs)

        def post(self, url: Any, data: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
            """POST the form ``data`` as a page does, CSRF token included."""
            if data is not None:
                data = {CSRF_FIELD: self.csrf_token(), **data}
            return super().post(url, data=data, **kwargs)

        def sign_in(self, email: str, password: str) -> None:
            """Sign in through the login form; raises naming the status when refused."""
            response = self.post(
                "/login",
                {"email": email, "password": password, "next": "/"},
                follow_redirects=False,
            )
            if response.status_code != 303:
                raise AssertionError(
                    f"signing in as {email} through /login answered {response.status_code}, not 303"
                )

    return WebClient


@pytest.fixture
def crm_web_for(crm_app: FastAPI) -> Iterator[Callable[[TestUser], TestClient]]:
    """``crm_web_for(user)``: a client signed in to the staff web UI as ``user``.

    It signed in through the login form and holds the session cookie; it asks for HTML, and
    its ``post(url, data)`` (and every other state-changing request) carries the CSRF token and
    the origin header, so ``crm_web_for(user).post("/ui/notes/new", {"title": "Hi"})`` submits
    a form as a browser does. Redirects are followed unless ``follow_redirects=False``.
    """
    web_client = _web_client_class()
    clients: list[TestClient] = []

    def make(user: TestUser) -> TestClient:
        """A client signed in as ``user``."""
        client = web_client(crm_app, base_url=BASE_URL, headers={"Accept": "text/html"})
        clients.append(client)
        client.sign_in(user.email, user.password)
        return client

    yield make
    for client in clients:
        client.close()


# --- command line -----------------------------------------------------------------------------


class CrmCli:
    """Runs ``crm`` against the test's CRM: in-process (call it) or as a subprocess (``run``)."""

    def __init__(self, crm: Crm) -> None:
        self.crm = crm

    def __call__(self, *args: str, input: str | None = None) -> Result:
        """``crm ARGS`` in this process with click's runner; returns its ``Result``.

        Exceptions other than the CLI's own errors propagate, with their traceback.
        """
        from click.testing import CliRunner

        from cli import cli

        try:
            return CliRunner().invoke(
                cli, list(args), input=input, obj=self.crm, prog_name="crm", catch_exceptions=False
            )
        finally:
            self.crm.refresh()

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = False,
        timeout: float = 120,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``crm ARGS`` as a real subprocess with the same environment and import path.

        Its output is captured as text; ``check=True`` raises when it exits non-zero.
        """
        merged = {**os.environ, **(env or {})}
        merged["PYTHONPATH"] = os.pathsep.join(_extra_import_path(merged.get("PYTHONPATH")))
        try:
            return subprocess.run(
                [sys.executable, "-c", "import cli; cli.main()", *args],
                input=input,
                env=merged,
                capture_output=True,
                text=True,
                check=check,
                timeout=timeout,
            )
        finally:
            self.crm.refresh()


def _extra_import_path(existing: str | None) -> list[str]:
    """``PYTHONPATH`` for a subprocess that imports what this process can: the entries pytest
    or the environment added to ``sys.path`` (the interpreter's own come by themselves)."""
    own = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    paths = [p for p in (existing or "").split(os.pathsep) if p]
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        if any(real == root or real.startswith(root + os.sep) for root in own):
            continue
        if entry not in paths:
            paths.append(entry)
    return paths


@pytest.fixture
def crm_cli(crm_instance: Crm) -> CrmCli:
    """Run ``crm`` against the test database: ``crm_cli("modules", "list")`` in-process (click's
    ``Result``: ``exit_code``, ``output``), ``crm_cli.run("modules", "list")`` as a subprocess
    (``subprocess.CompletedProcess``: ``returncode``, ``stdout``, ``stderr``)."""
    return CrmCli(crm_instance)


__all__ = ["ADMIN_EMAIL", "ADMIN_PASSWORD", "USER_PASSWORD", "CrmCli", "TestUser"]
