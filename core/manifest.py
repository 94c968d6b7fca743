"""Plugin manifests and the dependency graph between modules.

A manifest says what a module is and what it needs. The core reads it before anything else of
the plugin runs, so it is plain data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from core.errors import ManifestError

#: 2-27 characters: a module's first revision id, ``<name>_0001``, must fit Alembic's
#: ``alembic_version.version_num`` (32 characters on PostgreSQL).
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,26}$")
CATEGORIES = (
    "operational",
    "analytical",
    "collaborative",
    "sales",
    "integration",
    "tools",
    "other",
)


@dataclass(frozen=True)
class Manifest:
    """What a module declares about itself.

    ``core`` is a PEP 440 version specifier of the core versions the module supports,
    for example ``">=0.1,<1"``.
    """

    name: str
    version: str
    summary: str
    category: str = "other"
    depends: tuple[str, ...] = ()
    core: str = ">=0.1"
    author: str = ""
    license: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_value(cls, value: object) -> Manifest:
        """Build a manifest from a ``Manifest`` or a plain dict, as a plugin's hook returns it."""
        if isinstance(value, Manifest):
            return value
        if isinstance(value, Mapping):
            known = {f for f in cls.__dataclass_fields__ if f != "extra"}
            unknown = set(value) - known
            if unknown:
                raise ManifestError(f"unknown manifest field(s): {', '.join(sorted(unknown))}")
            missing = {"name", "version", "summary"} - set(value)
            if missing:
                raise ManifestError(f"manifest lacks field(s): {', '.join(sorted(missing))}")
            data = dict(value)
            data["depends"] = tuple(data.get("depends", ()))
            return cls(**data)
        raise ManifestError(f"manifest must be a Manifest or a dict, not {type(value).__name__}")

    def validate(self, entry_point_name: str | None = None) -> None:
        """Raise ``ManifestError`` naming the module and the field that is wrong."""
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
        from packaging.version import InvalidVersion, Version

        where = f"module {self.name!r}"
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise ManifestError(
                f"module {self.name!r}: name must be 2-27 lower-case letters, digits or '_',"
                " starting with a letter"
            )
        if entry_point_name is not None and entry_point_name != self.name:
            raise ManifestError(
                f"{where}: entry point is named {entry_point_name!r}; the two must be equal"
            )
        try:
            Version(str(self.version))
        except InvalidVersion:
            raise ManifestError(
                f"{where}: version {self.version!r} is not a valid version"
            ) from None
        if not str(self.summary).strip():
            raise ManifestError(f"{where}: summary is empty")
        if self.category not in CATEGORIES:
            raise ManifestError(
                f"{where}: category {self.category!r} is not one of {', '.join(CATEGORIES)}"
            )
        for dep in self.depends:
            if not isinstance(dep, str) or not NAME_RE.match(dep):
                raise ManifestError(f"{where}: depends names an invalid module {dep!r}")
        if self.name in self.depends:
            raise ManifestError(f"{where}: depends on itself")
        try:
            SpecifierSet(self.core)
        except InvalidSpecifier:
            raise ManifestError(f"{where}: core {self.core!r} is not a version specifier") from None

    def supports_core(self, core_version: str) -> bool:
        """Whether this module declares support for ``core_version``."""
        from packaging.specifiers import SpecifierSet

        return SpecifierSet(self.core).contains(core_version, prereleases=True)


def dependency_closure(manifests: Mapping[str, Manifest], names: Iterable[str]) -> list[str]:
    """Return ``names`` and everything they depend on, dependencies first.

    Raises ``ManifestError`` for an unknown module, a missing dependency or a cycle, naming the
    modules involved.
    """
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join((*path[path.index(name) :], name))
            raise ManifestError(f"dependency cycle between modules: {cycle}")
        if name not in manifests:
            if path:
                raise ManifestError(
                    f"module {path[-1]!r} depends on {name!r}, which is not installed"
                )
            raise ManifestError(f"unknown module {name!r}")
        state[name] = "visiting"
        for dep in manifests[name].depends:
            visit(dep, (*path, name))
        state[name] = "done"
        order.append(name)

    for name in names:
        visit(name, ())
    return order


def dependents_of(manifests: Mapping[str, Manifest], name: str) -> list[str]:
    """Every module that depends on ``name`` directly or indirectly, dependents last."""
    result: list[str] = []
    frontier = [name]
    while frontier:
        current = frontier.pop()
        for other, manifest in sorted(manifests.items()):
            if current in manifest.depends and other not in result:
                result.append(other)
                frontier.append(other)
    ordered = dependency_closure(manifests, result) if result else []
    return [m for m in ordered if m in result]
