"""The running CRM: settings, plugins, database and the hooks of enabled modules.

Hooks receive this object as ``crm``. It is cheap to create; the database and plugins are
opened on first use.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.plugins import CORE, HookResult, PluginRegistry
from core.settings import ModuleSetting, Settings, load_settings, module_settings

if TYPE_CHECKING:
    from core.db import Database

log = logging.getLogger("crm")


class Crm:
    """Settings, plugin registry and database of one CRM installation."""

    def __init__(
        self,
        settings: Settings,
        registry: PluginRegistry | None = None,
        database: Database | None = None,
    ) -> None:
        self.settings = settings
        self._registry = registry
        self._db = database
        self._enabled: list[str] | None = None
        self._module_settings: dict[str, dict[str, Any]] = {}
        self._memo: dict[str, Any] = {}

    @classmethod
    def from_env(cls) -> Crm:
        """A CRM configured from the environment and ``crm.toml``."""
        return cls(load_settings())

    @functools.cached_property
    def registry(self) -> PluginRegistry:
        """Plugins found through entry points (restricted by ``CRM_LOAD_PLUGINS``)."""
        if self._registry is None:
            self._registry = PluginRegistry.load(
                only=self.settings.load_plugins, strict=self.settings.strict_plugins
            )
        return self._registry

    @property
    def db(self) -> Database:
        """The database, opened on first use."""
        if self._db is None:
            from core.db import Database

            self._db = Database(self.settings.database_url)
        return self._db

    # --- modules ------------------------------------------------------------------------------

    def enabled_modules(self) -> list[str]:
        """Enabled modules whose plugins loaded, in dependency order."""
        if self._enabled is None:
            from core.state import read_states

            states = read_states(self)
            self._enabled = [
                name for name in self.registry.names() if states.get(name) == "installed"
            ]
        return self._enabled

    def active(self) -> list[str]:
        """The core followed by the enabled modules: whose hooks are live."""
        return [CORE, *self.enabled_modules()]

    def refresh(self) -> None:
        """Forget cached module states (after enabling or disabling modules)."""
        self._enabled = None
        self._memo.clear()

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, once per set of enabled modules (for what hooks declare, such as
        record types, asked for on every query a record rule builds)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def declared_settings(self, module: str) -> list[ModuleSetting]:
        """The settings ``module`` declares (``module_settings`` hook)."""
        declared: list[ModuleSetting] = []
        for result in self.registry.collect("module_settings", [module]):
            if result.error is not None:
                raise result.error
            declared.extend(result.value or ())
        return declared

    def module_settings(self, module: str) -> dict[str, Any]:
        """``module``'s settings, validated, defaults filled in; raises ``SettingsError``."""
        if module not in self._module_settings:
            self._module_settings[module] = module_settings(
                self.settings, module, self.declared_settings(module)
            )
        return self._module_settings[module]

    # --- hooks --------------------------------------------------------------------------------

    def collect(self, hook: str, **kwargs: Any) -> list[HookResult]:
        """Call ``hook`` on the core and each enabled module, isolating failures per plugin."""
        return self.registry.collect(hook, self.active(), **kwargs)

    def contributions(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """``(module, item)`` for every item returned by the core's and enabled modules' hook.

        Modules whose implementation raised are logged and left out.
        """
        items: list[tuple[str, Any]] = []
        for result in self.collect(hook, **kwargs):
            if result.error is None and result.value is not None:
                items.extend((result.plugin, item) for item in result.value)
        return items

    def notify(self, hook: str, **kwargs: Any) -> list[HookResult]:
        """Call an event hook on the core and each enabled module; errors are logged only."""
        kwargs.setdefault("crm", self)
        return self.collect(hook, **kwargs)

    def close(self) -> None:
        """Release database connections."""
        if self._db is not None:
            self._db.dispose()
