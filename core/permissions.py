"""Roles and permissions declared in code by the core and plugins, synchronised to the database.

A permission is the right to do one action on one model, written ``model:action``
(``customer:read``, ``operational.order:create``). Each declaration names the roles that hold it
by default; ``admin`` holds every permission.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ADMIN = "admin"
BUILTIN_ROLES = ("admin", "manager", "sales", "service", "marketing", "analyst")


SCOPES = ("shared", "own", "team", "all")


@dataclass(frozen=True)
class Role:
    """A role a module declares: ``name`` is stable, ``label`` is shown to people.

    ``scope`` says which records its holders see by default: only those shared with them
    (``shared``), their own (``own``), their team's (``team``) or every one (``all``); see
    :mod:`core.records`. Administrators may change
    it later (``crm roles scope``); synchronisation sets it only when the role is new.
    """

    name: str
    label: str
    description: str = ""
    scope: str = "all"


@dataclass(frozen=True)
class Permission:
    """The right to perform ``action`` on ``model``, granted by default to ``roles``."""

    model: str
    action: str
    description: str = ""
    roles: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The permission's name, ``model:action``."""
        return f"{self.model}:{self.action}"


def sync(session, declarations: Iterable[tuple[str, list[Role], list[Permission]]]) -> None:
    """Write declared roles, permissions and default grants to the database.

    ``declarations`` holds ``(module, roles, permissions)`` for the core and each enabled module.
    Existing grants are kept; ``admin`` is granted every permission.
    """
    from sqlalchemy import select

    from core import models

    declarations = list(declarations)
    known_roles = {r.name: r for r in session.scalars(select(models.Role))}
    for module, roles, _ in declarations:
        for role in roles:
            row = known_roles.get(role.name)
            if role.scope not in SCOPES:
                raise ValueError(
                    f"module {module!r}: role {role.name} has unknown scope {role.scope!r}"
                )
            if row is None:
                row = models.Role(name=role.name, label=role.label, module=module, scope=role.scope)
                session.add(row)
                known_roles[role.name] = row
            row.label, row.description = role.label, role.description
    session.flush()
    known_perms = {p.name: p for p in session.scalars(select(models.Permission))}
    grants = {(g.role, g.permission) for g in session.scalars(select(models.RolePermission))}
    for module, _, permissions in declarations:
        for perm in permissions:
            row = known_perms.get(perm.name)
            if row is None:
                row = models.Permission(name=perm.name, module=module)
                session.add(row)
                known_perms[perm.name] = row
            row.description = perm.description
            for role in {ADMIN, *perm.roles}:
                if role not in known_roles:
                    raise ValueError(
                        f"module {module!r}: permission {perm.name} names unknown role {role!r}"
                    )
                if (role, perm.name) not in grants:
                    session.add(models.RolePermission(role=role, permission=perm.name))
                    grants.add((role, perm.name))
    session.flush()


def remove_module(session, module: str) -> None:
    """Delete the roles and permissions a module declared (used when it is purged)."""
    from sqlalchemy import delete

    from core import models

    session.execute(delete(models.Permission).where(models.Permission.module == module))
    session.execute(delete(models.Role).where(models.Role.module == module))
