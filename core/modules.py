"""The module lifecycle: enable, disable, upgrade, uninstall, with repair after a crash.

Every operation is all-or-nothing. Its target modules are first marked with a transient state
(``to_install``, ``to_upgrade``, ``to_remove``) in a transaction of their own; then migrations,
hooks, permission sync and the final states run in *one* transaction on one connection. If any
step fails the transaction rolls back (DDL included: PostgreSQL and SQLite both have
transactional DDL), the marks are reset and the error names the module and the step. If the
process dies instead, the marks are still there on the next start and :func:`repair` resets them.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.orm import Session

from core import audit, migrate, permissions
from core.db import utcnow
from core.errors import ManifestError, ModuleError
from core.manifest import dependency_closure, dependents_of
from core.models import (
    DISABLED,
    INSTALLED,
    TO_DISABLE,
    TO_INSTALL,
    TO_REMOVE,
    TO_UPGRADE,
    TRANSIENT_STATES,
    UNINSTALLED,
    ModuleState,
)
from core.plugins import CORE

if TYPE_CHECKING:
    from core.runtime import Crm

PRESENT_STATES = (INSTALLED, DISABLED)


def cli_actor() -> audit.Actor:
    """The actor for changes made from the command line."""
    try:
        who = getpass.getuser()
    except Exception:
        who = "unknown"
    return audit.Actor(label=f"cli:{who}")


# --- reading ----------------------------------------------------------------------------------


def states(crm: Crm) -> dict[str, ModuleState]:
    """Module state rows by name."""
    with crm.db.session() as session:
        return {row.name: row for row in session.scalars(select(ModuleState))}


@dataclass
class ModuleInfo:
    """One module as ``crm modules list`` shows it."""

    name: str
    version: str | None
    state: str
    depends: list[str]
    summary: str
    category: str | None
    installed_version: str | None
    distribution: str | None
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return dict(self.__dict__)


def list_modules(crm: Crm) -> list[ModuleInfo]:
    """Every plugin found (loaded or not) and every module the database knows of."""
    rows = states(crm)
    result = []
    for name, info in sorted(crm.registry.plugins.items()):
        row = rows.get(name)
        manifest = info.manifest
        errors = [e for e in (info.error, *info.problems) if e]
        if row is not None and row.last_error:
            errors.append(f"last operation: {row.last_error}")
        result.append(
            ModuleInfo(
                name=name,
                version=manifest.version if manifest else info.distribution_version,
                state=row.state if row else UNINSTALLED,
                depends=list(manifest.depends) if manifest else [],
                summary=manifest.summary if manifest else "",
                category=manifest.category if manifest else None,
                installed_version=row.installed_version if row else None,
                distribution=info.distribution,
                errors=errors,
            )
        )
    for name, row in sorted(rows.items()):
        if name not in crm.registry.plugins:
            result.append(
                ModuleInfo(
                    name=name,
                    version=None,
                    state=row.state,
                    depends=[],
                    summary="",
                    category=None,
                    installed_version=row.installed_version,
                    distribution=None,
                    errors=["plugin not found: its package is not installed or not loaded"],
                )
            )
    return result


# --- the operation machinery ------------------------------------------------------------------


@dataclass
class _Step:
    module: str
    name: str


class _StepFailed(Exception):
    def __init__(self, step: _Step, cause: BaseException) -> None:
        super().__init__(f"{step.module}: {step.name}: {cause}")
        self.step, self.cause = step, cause


@contextmanager
def _step(module: str, name: str) -> Iterator[None]:
    try:
        yield
    except _StepFailed:
        raise
    except Exception as exc:
        raise _StepFailed(_Step(module, name), exc) from exc


def _mark(crm: Crm, names: Iterable[str], transient: str) -> dict[str, str]:
    previous: dict[str, str] = {}
    with crm.db.write() as session:
        for name in names:
            row = session.get(ModuleState, name) or ModuleState(name=name, state=UNINSTALLED)
            session.add(row)
            previous[name] = row.state
            row.previous_state, row.state = row.state, transient
            row.operation_started_at, row.last_error = utcnow(), None
    return previous


def _unmark(crm: Crm, previous: dict[str, str], error: str | None) -> None:
    with crm.db.write() as session:
        for name, state in previous.items():
            row = session.get(ModuleState, name)
            if row is not None:
                row.state, row.previous_state, row.operation_started_at = state, None, None
                row.last_error = error


def _run(
    crm: Crm,
    kind: str,
    targets: list[str],
    transient: str,
    work: Callable[[Connection, Session], None],
) -> None:
    previous = _mark(crm, targets, transient)
    try:
        with crm.db.writer.connect() as conn, conn.begin():
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
            with Session(bind=conn) as session:
                work(conn, session)
                session.flush()
    except _StepFailed as failure:
        message = (
            f"{kind} failed in module {failure.step.module!r} at step "
            f"{failure.step.name!r}: {type(failure.cause).__name__}: {failure.cause}"
        )
        _unmark(crm, previous, message)
        raise ModuleError(message + "; nothing was changed") from failure.cause
    except BaseException:
        _unmark(crm, previous, f"{kind} was interrupted; nothing was changed")
        raise
    crm.refresh()


def _finish(session: Session, name: str, state: str, version: str | None) -> None:
    row = session.get(ModuleState, name)
    row.state, row.previous_state, row.operation_started_at = state, None, None
    row.installed_version, row.last_error = version, None


def _declarations(crm: Crm, modules: Iterable[str]) -> list[tuple[str, list, list]]:
    return [
        (
            name,
            list(crm.registry.call_for(name, "roles") or ()),
            list(crm.registry.call_for(name, "permissions") or ()),
        )
        for name in [CORE, *modules]
    ]


def repair(crm: Crm) -> list[str]:
    """Reset modules left in a transient state by a crash; return what was repaired.

    The interrupted operation's transaction never committed, so the schema and data are as
    before: only the marks need resetting to the state before the operation.
    """
    repaired = []
    interrupted = select(ModuleState).where(ModuleState.state.in_(TRANSIENT_STATES))
    with crm.db.session() as session:
        # every command and server start calls this: take no write lock when there is nothing
        if session.scalars(interrupted).first() is None:
            return repaired
    with crm.db.write() as session:
        for row in session.scalars(interrupted):
            started = row.operation_started_at.isoformat() if row.operation_started_at else "?"
            repaired.append(f"{row.name}: {row.state} (started {started}) -> {row.previous_state}")
            row.last_error = (
                f"operation {row.state} started {started} was interrupted;"
                f" repaired to {row.previous_state}"
            )
            row.state, row.previous_state = row.previous_state or UNINSTALLED, None
            row.operation_started_at = None
            audit.record(session, "repair", "module", row.name, detail=row.last_error)
    if repaired:
        crm.refresh()
    return repaired


def installed(crm: Crm) -> list[str]:
    """Modules that are installed, enabled or disabled (their tables exist)."""
    return [name for name, row in states(crm).items() if row.state in PRESENT_STATES]


def _check_enableable(crm: Crm, names: list[str]) -> list[str]:
    manifests = crm.registry.manifests()
    for name in names:
        info = crm.registry.plugins.get(name)
        if info is None:
            raise ModuleError(
                f"unknown module {name!r}; `crm modules list` shows what is installed"
            )
        if not info.loaded:
            raise ModuleError(f"module {name!r} cannot be enabled: {info.error}")
    try:
        order = dependency_closure(manifests, names)
    except ManifestError as exc:
        raise ModuleError(str(exc)) from None
    for name in order:
        for problem in crm.registry.plugins[name].problems:
            raise ModuleError(f"module {name!r} cannot be enabled: {problem}")
    return order


def _owned_tables(crm: Crm, module: str) -> set[str]:
    tables = set()
    for model in crm.registry.call_for(module, "models") or ():
        table = getattr(model, "__table__", model)
        tables.add(table.name)
    return tables


def _check_table_names(crm: Crm, module: str) -> None:
    for table in sorted(_owned_tables(crm, module)):
        if not table.startswith(f"{module}_"):
            raise ValueError(f"table {table!r} must be named '{module}_...'")


# --- operations -------------------------------------------------------------------------------


def enable(crm: Crm, names: Iterable[str]) -> list[str]:
    """Enable ``names`` and their dependencies, dependencies first; return those enabled."""
    order = _check_enableable(crm, list(names))
    current = states(crm)
    todo = [
        n for n in order if (current.get(n).state if n in current else UNINSTALLED) != INSTALLED
    ]
    if not todo:
        return []
    fresh = {n for n in todo if n not in current or current[n].state == UNINSTALLED}
    if crm.settings.is_sqlite:
        from core.backup import automatic_backup

        automatic_backup(crm, "before-enable")
    active = [*crm.enabled_modules(), *todo]

    def work(conn: Connection, session: Session) -> None:
        for name in todo:
            version = crm.registry.manifests()[name].version
            with _step(name, "models"):
                _check_table_names(crm, name)
            with _step(name, "migrations"):
                migrate.upgrade(crm, conn, name)
            if name in fresh:
                with _step(name, "post_install"):
                    crm.registry.call_for(name, "post_install", crm=crm, session=session)
                    session.flush()
            _finish(session, name, INSTALLED, version)
            audit.record(session, "module_enable", "module", name, after={"version": version})
        with _step(todo[-1], "permissions"):
            permissions.sync(session, _declarations(crm, active))

    _run(crm, "enable", todo, TO_INSTALL, work)
    for name in todo:
        crm.notify("module_enabled", name=name)
    return todo


def enabled_dependents(crm: Crm, name: str) -> list[str]:
    """Enabled modules that depend on ``name``."""
    enabled = set(crm.enabled_modules())
    return [m for m in dependents_of(crm.registry.manifests(), name) if m in enabled]


def disable(crm: Crm, name: str, with_dependents: bool = False) -> list[str]:
    """Disable ``name`` (and its enabled dependents when asked); data is kept."""
    row = states(crm).get(name)
    if name not in crm.registry.plugins and row is None:
        raise ModuleError(f"unknown module {name!r}")
    if row is None or row.state != INSTALLED:
        return []
    dependents = enabled_dependents(crm, name)
    if dependents and not with_dependents:
        raise ModuleError(
            f"cannot disable {name!r}: enabled module(s) {', '.join(dependents)} depend on it;"
            " disable them first or pass --with-dependents"
        )
    targets = [*reversed(dependents), name]
    remaining = [m for m in crm.enabled_modules() if m not in targets]

    def work(conn: Connection, session: Session) -> None:
        for module in targets:
            _finish(session, module, DISABLED, session.get(ModuleState, module).installed_version)
            audit.record(session, "module_disable", "module", module)
        permissions.sync(session, _declarations(crm, remaining))

    _run(crm, "disable", targets, TO_DISABLE, work)
    for module in targets:
        crm.notify("module_disabled", name=module)
    return targets


@dataclass
class Impact:
    """What uninstalling a module would remove."""

    modules: list[str]
    tables: dict[str, dict[str, int]]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {"modules": self.modules, "tables": self.tables}


def _tables_of(crm: Crm, module: str, existing: set[str]) -> set[str]:
    declared = _owned_tables(crm, module) if module in crm.registry.plugins else set()
    others = [m for m in crm.registry.plugins if m != module and m.startswith(f"{module}_")]
    by_prefix = {
        t
        for t in existing
        if t.startswith(f"{module}_") and not any(t.startswith(f"{o}_") for o in others)
    }
    return (declared | by_prefix) & existing


def uninstall_impact(crm: Crm, name: str) -> Impact:
    """Modules (dependents first) and tables with row counts that ``uninstall`` would remove."""
    present = set(installed(crm))
    if name not in present:
        raise ModuleError(f"module {name!r} is not installed")
    dependents = [m for m in dependents_of(crm.registry.manifests(), name) if m in present]
    modules = [*reversed(dependents), name]
    tables: dict[str, dict[str, int]] = {}
    with crm.db.engine.connect() as conn:
        existing = set(inspect(conn).get_table_names())
        for module in modules:
            tables[module] = {
                t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                for t in sorted(_tables_of(crm, module, existing))
            }
    return Impact(modules, tables)


def uninstall(crm: Crm, name: str) -> tuple[Impact, Path]:
    """Back up, then remove ``name`` and its dependents with their tables and data."""
    impact = uninstall_impact(crm, name)
    for module in impact.modules:
        info = crm.registry.plugins.get(module)
        if info is None or not info.loaded:
            raise ModuleError(f"module {module!r} cannot be uninstalled: its plugin is not loaded")
    from core.backup import automatic_backup

    backup_path = automatic_backup(crm, f"before-uninstall-{name}")
    remaining = [m for m in crm.enabled_modules() if m not in impact.modules]

    def work(conn: Connection, session: Session) -> None:
        for module in impact.modules:
            before = set(inspect(conn).get_table_names())
            owned = _tables_of(crm, module, before)
            with _step(module, "pre_uninstall"):
                crm.registry.call_for(module, "pre_uninstall", crm=crm, session=session)
                session.flush()
            with _step(module, "downgrade"):
                migrate.downgrade_to_base(crm, conn, module)
                after = set(inspect(conn).get_table_names())
                touched = sorted((before - after) - owned)
                if touched:
                    raise ModuleError(f"its migrations dropped other modules' tables: {touched}")
                left = sorted(owned & after)
                if left:
                    raise ModuleError(f"its migrations left its tables behind: {left}")
            permissions.remove_module(session, module)
            _finish(session, module, UNINSTALLED, None)
            audit.record(
                session,
                "module_uninstall",
                "module",
                module,
                before={"tables": impact.tables[module]},
                detail=f"backup: {backup_path}",
            )
        permissions.sync(session, _declarations(crm, remaining))

    _run(crm, "uninstall", impact.modules, TO_REMOVE, work)
    return impact, backup_path


def upgrade(crm: Crm, names: Iterable[str] | None = None) -> list[str]:
    """Apply new migrations of installed modules (all of them when ``names`` is None)."""
    present = installed(crm)
    targets = list(present if names is None else names)
    for name in targets:
        if name not in crm.registry.plugins:
            raise ModuleError(f"unknown module {name!r}")
        if name not in present:
            raise ModuleError(f"module {name!r} is not installed; enable it first")
    if not targets:
        return []
    targets = [n for n in crm.registry.names() if n in targets]
    if crm.settings.is_sqlite:
        from core.backup import automatic_backup

        automatic_backup(crm, "before-upgrade")
    current = states(crm)

    def work(conn: Connection, session: Session) -> None:
        for name in targets:
            with _step(name, "migrations"):
                migrate.upgrade(crm, conn, name)
            version = crm.registry.manifests()[name].version
            _finish(session, name, current[name].state, version)
            audit.record(
                session,
                "module_upgrade",
                "module",
                name,
                before={"version": current[name].installed_version},
                after={"version": version},
            )
        permissions.sync(session, _declarations(crm, crm.enabled_modules()))

    _run(crm, "upgrade", targets, TO_UPGRADE, work)
    return targets
