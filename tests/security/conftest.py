"""Fixtures of the security suite: the access-matrix world, built once per database.

``world`` is module-scoped and parametrised over SQLite and PostgreSQL (ids ``sqlite`` and
``postgres``, as the suite's ``db_url``): a test that changes the world restores it
(``World.snapshot`` / ``World.restore``) before the next one runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET, _postgres_admin_url, postgres_url_or_skip
from tests.security.world import ADMIN_EMAIL, ADMIN_PASSWORD, PLUGINS, World, build, create_world


def _world(url: str, folder: Path) -> Iterator[World]:
    from core import modules
    from core.bootstrap import initialise
    from core.runtime import Crm
    from core.settings import load_settings

    env = {
        "CRM_DATABASE_URL": url,
        "CRM_SECRET_KEY": TEST_SECRET,
        "CRM_BACKUP_DIR": str(folder / "backups"),
        "CRM_LOAD_PLUGINS": ",".join(PLUGINS),
        # webhook endpoints of the world point at a closed loopback port (no network)
        "CRM_WEBHOOKS_ALLOW_PRIVATE": "true",
        # deliveries are sent when the admin asks (ping, redeliver), not by a background thread
        "CRM_WEBHOOKS_IN_SERVER": "false",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("CRM_") and k not in env]:
            if key not in ("CRM_TEST_POSTGRES_URL", "CRM_REQUIRE_POSTGRES"):
                patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        patch.chdir(folder)
        crm = Crm(load_settings(environ=env))
        try:
            initialise(crm, ADMIN_EMAIL, ADMIN_PASSWORD)
            modules.enable(crm, list(PLUGINS))
            crm.refresh()
            world = build(create_world(crm))
            try:
                yield world
            finally:
                world.close()
        finally:
            crm.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The access-matrix world (see ``tests/security/world.py``) on SQLite or PostgreSQL."""
    folder = tmp_path_factory.mktemp("world")
    if request.param == "sqlite":
        yield from _world(f"sqlite:///{folder / 'crm.db'}", folder)
        return
    from core.testing import postgres_database

    with postgres_database(postgres_url_or_skip(_postgres_admin_url())) as url:
        yield from _world(url, folder)
