"""Loading plugins from entry points and calling their hooks safely.

Entry points of group ``crm.plugins`` are loaded one at a time: a plugin that fails to import,
implements an unknown hook or declares a bad manifest is recorded with its error and the rest
load. ``CRM_STRICT_PLUGINS=1`` turns such failures into errors.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from core import PLUGIN_API_VERSION, PROJECT_NAME, __version__, hookspecs
from core.errors import CrmError, ManifestError
from core.manifest import Manifest, dependency_closure

log = logging.getLogger("crm.plugins")

ENTRY_POINT_GROUP = "crm.plugins"
CORE = "core"


class PluginLoadError(CrmError):
    """A plugin could not be loaded and strict plugin loading is on."""


@dataclass
class PluginInfo:
    """One plugin found through an entry point, loaded or not."""

    name: str
    distribution: str | None = None
    distribution_version: str | None = None
    module: object | None = None
    manifest: Manifest | None = None
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    #: Deprecated hooks or hook arguments this plugin implements (it still works, for now).
    deprecations: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        """Whether the plugin imported and registered without error."""
        return self.module is not None and self.error is None


@dataclass
class HookResult:
    """What one plugin's implementation of a hook returned, or the error it raised."""

    plugin: str
    value: Any = None
    error: BaseException | None = None


class PluginRegistry:
    """Every plugin found, the pluggy manager they are registered with, and safe hook calls."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}

    # --- loading ------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        only: Iterable[str] | None = None,
        strict: bool = False,
        extra: Iterable[tuple[str, object]] = (),
    ) -> PluginRegistry:
        """Register the core and every ``crm.plugins`` entry point (restricted to ``only``).

        ``extra`` registers (name, module-or-object) pairs directly, for embedding and tests.
        """
        from core import builtin

        registry = cls(strict=strict)
        registry.pm.register(builtin, name=CORE)
        wanted = None if only is None else set(only)
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if wanted is not None and ep.name not in wanted:
                continue
            if ep.name in registry.plugins or ep.name == CORE:
                registry._fail(
                    PluginInfo(name=ep.name), f"another plugin is already named {ep.name!r}"
                )
                continue
            info = PluginInfo(
                name=ep.name,
                distribution=ep.dist.name if ep.dist else None,
                distribution_version=ep.dist.version if ep.dist else None,
            )
            try:
                module = ep.load()
            except BaseException as exc:  # a plugin may raise anything on import
                if isinstance(exc, KeyboardInterrupt):
                    raise
                registry._fail(info, f"import failed: {_describe(exc)}", exc)
                continue
            registry._register(info, module)
        for name, module in extra:
            registry._register(PluginInfo(name=name), module)
        registry._add_published_hookspecs()
        registry._check_unknown_hooks()
        registry._check_graph()
        registry._note_deprecations()
        return registry

    def _register(self, info: PluginInfo, module: object) -> None:
        self.plugins[info.name] = info
        try:
            self.pm.register(module, name=info.name)
        except Exception as exc:
            self._fail(info, f"registration failed: {_describe(exc)}", exc)
            return
        shadowed = [n for n in _shadowed_hooks(module) if self._impl(info.name, n) is None]
        if shadowed:
            self.pm.unregister(name=info.name)
            self._fail(
                info,
                f"submodule(s) {', '.join(shadowed)} hide the hook implementation(s) of the "
                "same name (importing a submodule replaces the package attribute); give the "
                "functions other names and mark them @hookimpl(specname=...)",
            )
            return
        info.module = module
        try:
            impl = self._impl(info.name, "manifest")
            if impl is None:
                raise ManifestError("plugin implements no 'manifest' hook")
            manifest = Manifest.from_value(self._call("manifest", impl, {}))
            manifest.validate(entry_point_name=info.name)
        except Exception as exc:
            self.pm.unregister(name=info.name)
            info.module = None
            self._fail(info, f"bad manifest: {_describe(exc)}", exc)
            return
        info.manifest = manifest

    def _fail(self, info: PluginInfo, message: str, exc: BaseException | None = None) -> None:
        info.error = message
        self.plugins.setdefault(info.name, info)
        log.error("plugin %s: %s", info.name, message)
        if self.strict:
            raise PluginLoadError(f"plugin {info.name!r}: {message}") from exc

    def _add_published_hookspecs(self) -> None:
        for info in list(self.plugins.values()):
            if not info.loaded:
                continue
            impl = self._impl(info.name, "hookspecs")
            if impl is None:
                continue
            try:
                specs = self._call("hookspecs", impl, {})
                if specs is not None:
                    self.pm.add_hookspecs(specs)
            except Exception as exc:
                self._unload(info, f"publishing hookspecs failed: {_describe(exc)}", exc)

    def _check_unknown_hooks(self) -> None:
        for caller_name in dir(self.pm.hook):
            caller = getattr(self.pm.hook, caller_name)
            if not isinstance(caller, pluggy.HookCaller) or caller.spec is not None:
                continue
            for impl in caller.get_hookimpls():
                info = self.plugins.get(impl.plugin_name)
                if info and info.loaded and not impl.optionalhook:
                    self._unload(info, f"implements unknown hook {caller_name!r}")

    def _check_graph(self) -> None:
        manifests = self.manifests()
        for info in self.plugins.values():
            if not info.loaded or info.manifest is None:
                continue
            if not info.manifest.supports_core(__version__):
                info.problems.append(
                    f"supports core {info.manifest.core}, this core is {__version__}"
                    f" (plugin API {PLUGIN_API_VERSION}): install a release of"
                    f" {info.distribution or info.name} made for this core"
                )
            try:
                dependency_closure(manifests, [info.name])
            except ManifestError as exc:
                info.problems.append(str(exc))

    def _note_deprecations(self) -> None:
        """Record, per plugin, the deprecated hooks and arguments it implements.

        pluggy warns once at registration (``warn_on_impl``, ``warn_on_impl_args``); the notes
        keep that visible in ``crm plugins list`` and the checklist.
        """
        for caller_name in sorted(dir(self.pm.hook)):
            caller = getattr(self.pm.hook, caller_name)
            if not isinstance(caller, pluggy.HookCaller) or caller.spec is None:
                continue
            options = caller.spec.opts
            for impl in caller.get_hookimpls():
                info = self.plugins.get(impl.plugin_name)
                if info is None or not info.loaded:
                    continue
                if options.get("warn_on_impl") is not None:
                    info.deprecations.append(f"hook {caller_name}: {options['warn_on_impl']}")
                for arg, warning in (options.get("warn_on_impl_args") or {}).items():
                    if arg in impl.argnames:
                        info.deprecations.append(f"hook {caller_name}, argument {arg!r}: {warning}")

    def _unload(self, info: PluginInfo, message: str, exc: BaseException | None = None) -> None:
        if self.pm.is_registered(info.module):
            self.pm.unregister(name=info.name)
        info.module = None
        self._fail(info, message, exc)

    # --- queries ------------------------------------------------------------------------------

    def manifests(self) -> dict[str, Manifest]:
        """Manifests of the plugins that loaded, by module name."""
        return {
            name: info.manifest
            for name, info in self.plugins.items()
            if info.loaded and info.manifest is not None
        }

    def names(self) -> list[str]:
        """Names of loaded modules in dependency order where the graph allows, else by name."""
        manifests = self.manifests()
        ordered: list[str] = []
        for name in sorted(manifests):
            try:
                for dep in dependency_closure(manifests, [name]):
                    if dep not in ordered:
                        ordered.append(dep)
            except ManifestError:
                if name not in ordered:
                    ordered.append(name)
        return ordered

    def failed(self) -> list[PluginInfo]:
        """Plugins that did not load, with their errors."""
        return [info for info in self.plugins.values() if not info.loaded]

    # --- calling hooks ------------------------------------------------------------------------

    def _impl(self, plugin: str, hook: str) -> pluggy.HookImpl | None:
        caller = getattr(self.pm.hook, hook, None)
        if caller is None:
            return None
        for impl in caller.get_hookimpls():
            if impl.plugin_name == plugin:
                return impl
        return None

    def implements(self, plugin: str, hook: str) -> bool:
        """Whether ``plugin`` implements ``hook``."""
        return self._impl(plugin, hook) is not None

    def hooks_of(self, plugin: str) -> list[str]:
        """Names of the hooks ``plugin`` implements."""
        return sorted(
            caller.name for caller in self.pm.get_hookcallers(self.pm.get_plugin(plugin)) or []
        )

    def call_for(self, plugin: str, hook: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of ``hook``; ``None`` when it has none.

        Exceptions propagate: the caller decides what a failure of this one module means.
        """
        impl = self._impl(plugin, hook)
        if impl is None:
            return None
        return self._call(hook, impl, kwargs)

    def _call(self, hook: str, impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
        """Call one implementation with the arguments it asks for: every hook call goes here."""
        return impl.function(*[kwargs[arg] for arg in impl.argnames])

    def _active_impls(self, hook: str, active: Iterable[str]) -> Iterator[pluggy.HookImpl]:
        caller = getattr(self.pm.hook, hook, None)
        if caller is None:
            raise AttributeError(f"no hook named {hook!r}")
        by_plugin = {impl.plugin_name: impl for impl in caller.get_hookimpls()}
        for name in active:
            if name in by_plugin:
                yield by_plugin[name]

    def call_each(self, hook: str, active: Iterable[str], **kwargs: Any) -> list[HookResult]:
        """Call ``hook`` on each plugin in ``active``; the first error aborts the call.

        For hooks that are part of a transaction: the error is raised as ``PluginHookError``
        naming the plugin, and the caller rolls back.
        """
        results = []
        for impl in self._active_impls(hook, active):
            try:
                value = self._call(hook, impl, kwargs)
            except Exception as exc:
                raise PluginHookError(impl.plugin_name, hook, exc) from exc
            results.append(HookResult(impl.plugin_name, value=value))
        return results

    def collect(self, hook: str, active: Iterable[str], **kwargs: Any) -> list[HookResult]:
        """Call ``hook`` on each plugin in ``active`` (in that order), one at a time.

        An implementation that raises is logged with its plugin's name and returned as a
        ``HookResult`` with ``error`` set; the others still run.
        """
        results = []
        for impl in self._active_impls(hook, active):
            try:
                value = self._call(hook, impl, kwargs)
            except Exception as exc:
                log.exception("plugin %s: hook %s raised", impl.plugin_name, hook)
                results.append(HookResult(impl.plugin_name, error=exc))
            else:
                results.append(HookResult(impl.plugin_name, value=value))
        return results


class PluginHookError(CrmError):
    """A plugin's implementation of a hook that must succeed raised; names the plugin."""

    def __init__(self, plugin: str, hook: str, cause: BaseException) -> None:
        super().__init__(f"module {plugin}: {hook} failed: {type(cause).__name__}: {cause}")
        self.plugin, self.hook, self.cause = plugin, hook, cause


def _shadowed_hooks(module: object) -> list[str]:
    """Hook names that a plugin package's submodules took over (``models`` and ``models.py``)."""
    import types

    return sorted(
        name
        for name in dir(hookspecs)
        if not name.startswith("_")
        and isinstance(getattr(module, name, None), types.ModuleType)
        and getattr(getattr(module, name), "__name__", "").startswith(
            f"{getattr(module, '__name__', '')}."
        )
    )


def _describe(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text.splitlines()[-1] if text else type(exc).__name__
