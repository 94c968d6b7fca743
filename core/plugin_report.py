"""What ``crm plugins list`` and the admin page show about installed plugins.

One entry per plugin found through the ``crm.plugins`` entry points (loaded or not), with the
distribution that provides it, the hooks it implements, its state in the database and every
error, problem or deprecation found while loading it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from core.plugins import CORE

if TYPE_CHECKING:
    from core.runtime import Crm

#: States shown when the database cannot say (not initialised, or not reachable).
UNKNOWN = "unknown"


@dataclass
class PluginEntry:
    """One plugin as the report shows it."""

    name: str
    distribution: str | None
    version: str | None
    module: str | None
    core: str | None
    state: str
    enabled: bool
    loaded: bool
    hooks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    deprecations: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return asdict(self)


def plugin_report(crm: Crm | None = None) -> list[PluginEntry]:
    """Every plugin found, sorted by distribution then name.

    Works before ``crm init`` and when the database is unreachable: the state is then
    ``unknown`` and the reason is added to each entry's errors.
    """
    from core.runtime import Crm

    crm = crm or Crm.from_env()
    states, state_error = _states(crm)
    entries = []
    for name, info in crm.registry.plugins.items():
        manifest = info.manifest
        errors = [e for e in (info.error, *info.problems) if e]
        if state_error:
            errors.append(state_error)
        entries.append(
            PluginEntry(
                name=name,
                distribution=info.distribution,
                version=info.distribution_version or (manifest.version if manifest else None),
                module=getattr(info.module, "__name__", None),
                core=manifest.core if manifest else None,
                state=UNKNOWN if state_error else states.get(name, "uninstalled"),
                enabled=states.get(name) == "installed",
                loaded=info.loaded,
                hooks=crm.registry.hooks_of(name) if info.loaded else [],
                errors=errors,
                deprecations=list(info.deprecations),
            )
        )
    return sorted(entries, key=lambda e: (e.distribution or "", e.name))


def _states(crm: Crm) -> tuple[dict[str, str], str | None]:
    from core.state import read_states

    try:
        return read_states(crm), None
    except Exception as exc:  # the report must work whatever state the database is in
        return {}, f"module states unavailable: {type(exc).__name__}: {exc}"


def deprecated_use(crm: Crm) -> list[str]:
    """``module: deprecation`` for every enabled module using a deprecated hook or argument."""
    return [
        f"{name}: {note}"
        for name in crm.enabled_modules()
        if name != CORE
        for note in crm.registry.plugins[name].deprecations
    ]
