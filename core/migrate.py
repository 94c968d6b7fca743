"""Schema migrations with Alembic: one branch per module, the core's included.

Each module keeps its revisions in its own folder (the ``migrations`` hook); its first revision
carries ``branch_labels = ("<module>",)``. Upgrading a module runs ``<module>@head``, removing it
``<module>@base``. Every operation runs on a connection the caller holds inside one transaction,
so a failing migration leaves the schema as it was, on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from core.errors import SchemaMismatchError
from core.plugins import CORE

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from core.runtime import Crm

CORE_MIGRATIONS = Path(__file__).parent / "migrations"


def migration_folders(crm: Crm, modules: list[str]) -> dict[str, Path]:
    """The versions folder of the core and of each of ``modules`` that has migrations."""
    folders = {CORE: CORE_MIGRATIONS / "versions"}
    for name in modules:
        path = crm.registry.call_for(name, "migrations")
        if path is not None:
            folders[name] = Path(path)
    return folders


def _config(folders: dict[str, Path], connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(CORE_MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in folders.values()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _script(folders: dict[str, Path]) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(folders))


@dataclass
class BranchStatus:
    """Where one module's schema stands."""

    module: str
    head: str | None
    current: str | None

    @property
    def up_to_date(self) -> bool:
        """Whether the database is at the module's newest revision."""
        return self.head == self.current


def _revisions_by_module(script: ScriptDirectory, folders: dict[str, Path]) -> dict[str, set[str]]:
    owned: dict[str, set[str]] = {name: set() for name in folders}
    for rev in script.walk_revisions():
        path = Path(rev.path).resolve().parent
        for name, folder in folders.items():
            if path == folder.resolve():
                owned[name].add(rev.revision)
    return owned


def _as_tuple(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)  # type: ignore[arg-type]


def _applied(script: ScriptDirectory, heads: set[str]) -> set[str]:
    """Every revision applied: the heads and all they descend from, dependencies included.

    Alembic records only heads; a revision that ``depends_on`` another module's revision
    replaces it in ``alembic_version``, so each module's position must be derived.
    """
    applied: set[str] = set()
    frontier = list(heads)
    while frontier:
        rev = script.get_revision(frontier.pop())
        if rev is None or rev.revision in applied:
            continue
        applied.add(rev.revision)
        for parent in (*_as_tuple(rev.down_revision), *_as_tuple(rev.dependencies)):
            frontier.extend(r.revision for r in script.get_revisions(parent) if r is not None)
    return applied


def present_modules(crm: Crm) -> list[str]:
    """Loaded modules whose revisions may be in the database (installed, disabled, mid-way)."""
    from core.state import read_states

    states = read_states(crm)
    return [n for n in crm.registry.names() if states.get(n, "uninstalled") != "uninstalled"]


def status(crm: Crm, connection: Connection, modules: list[str]) -> list[BranchStatus]:
    """Head and current revision of the core and each of ``modules``."""
    from alembic.runtime.migration import MigrationContext

    report = migration_folders(crm, modules)
    folders = migration_folders(crm, sorted({*present_modules(crm), *modules}))
    script = _script(folders)
    owned = _revisions_by_module(script, folders)
    applied = _applied(script, set(MigrationContext.configure(connection).get_current_heads()))
    result = []
    for name in report:
        revs = owned[name]
        heads = [h for h in script.get_heads() if h in revs]
        head = heads[0] if heads else None
        mine = revs & applied
        current = None
        if mine:
            # the newest applied revision of this module: the one no other applied one follows
            parents = {p for r in mine for p in _as_tuple(script.get_revision(r).down_revision)}
            current = sorted(mine - parents)[0]
        result.append(BranchStatus(name, head, current))
    return result


def _operation_folders(crm: Crm, module: str) -> dict[str, Path]:
    return migration_folders(crm, sorted({*present_modules(crm), module} - {CORE}))


def upgrade(crm: Crm, connection: Connection, module: str) -> None:
    """Apply ``module``'s migrations up to its head, inside the connection's transaction."""
    from alembic import command

    folders = _operation_folders(crm, module)
    if module not in folders:
        return
    command.upgrade(_config(folders, connection), f"{module}@head")


def downgrade_to_base(crm: Crm, connection: Connection, module: str) -> None:
    """Revert every migration of ``module``, inside the connection's transaction."""
    from alembic import command

    folders = _operation_folders(crm, module)
    if module not in folders:
        return
    statuses = {s.module: s for s in status(crm, connection, [module])}
    if statuses[module].current is None:
        return
    command.downgrade(_config(folders, connection), f"{module}@base")


def check_current(crm: Crm, modules: list[str]) -> list[str]:
    """Problems with the schema of the core and ``modules``; empty when all are current."""
    problems = []
    with crm.db.engine.connect() as connection:
        for branch in status(crm, connection, modules):
            if branch.current is None:
                problems.append(f"{branch.module}: schema not installed")
            elif branch.current != branch.head:
                problems.append(
                    f"{branch.module}: schema at {branch.current}, code expects {branch.head}"
                )
    return problems


def require_current(crm: Crm, modules: list[str]) -> None:
    """Raise ``SchemaMismatchError`` naming the command that fixes a schema not matching code."""
    problems = check_current(crm, modules)
    if problems:
        fix = (
            "crm init"
            if any(p.startswith("core: schema not installed") for p in problems)
            else "crm db upgrade"
        )
        raise SchemaMismatchError(
            "the database schema does not match the code: "
            + "; ".join(problems)
            + f". Run `{fix}` to fix it."
        )
