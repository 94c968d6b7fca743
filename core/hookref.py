"""The hook reference (``docs/hooks.md``), generated from the hook specifications' docstrings
so that it cannot drift from them: ``make hooks-doc`` (``python -m core.hookref``) writes it,
and a test fails when the file differs from what this module generates.

It covers the core's hooks (``core/hookspecs.py``, grouped by the section comments of that
file) and the hooks the built-in modules publish for the modules that depend on them.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterator
from types import ModuleType

from core import PROJECT_NAME

#: Modules whose hook specifications are documented, with the title of their part.
SPEC_MODULES = (
    ("core.hookspecs", "Core hooks"),
    ("plugins.operational.published_hooks", "Published by operational"),
)
_SECTION = re.compile(r"^# --- (?P<title>.+?) -+$")
_MARK = f"{PROJECT_NAME}_spec"


def hookspecs(module: ModuleType) -> list[Callable[..., object]]:
    """The functions of ``module`` marked ``@hookspec``, in source order."""
    found = [
        value
        for value in vars(module).values()
        if inspect.isfunction(value) and hasattr(value, _MARK)
    ]
    return sorted(found, key=lambda f: f.__code__.co_firstlineno)


def _sections(module: ModuleType) -> dict[int, str]:
    """Section titles of ``module``'s source by the line they stand on."""
    lines, _ = inspect.getsourcelines(module)
    return {
        number: match["title"]
        for number, line in enumerate(lines, start=1)
        if (match := _SECTION.match(line.strip()))
    }


def _entries(module: ModuleType) -> Iterator[str]:
    sections = sorted(_sections(module).items())
    current = None
    for spec in hookspecs(module):
        line = spec.__code__.co_firstlineno
        title = next((t for n, t in reversed(sections) if n < line), None)
        if title != current and title is not None:
            current = title
            yield f"### {title}\n"
        options = getattr(spec, _MARK) or {}
        flags = [name for name in ("firstresult", "historic") if options.get(name)]
        if options.get("warn_on_impl"):
            flags.append("deprecated")
        suffix = f" *({', '.join(flags)})*" if flags else ""
        yield f"#### `{spec.__name__}{inspect.signature(spec)}`{suffix}\n"
        if options.get("warn_on_impl"):
            yield f"**Deprecated:** {options['warn_on_impl']}\n"
        for argument, warning in (options.get("warn_on_impl_args") or {}).items():
            yield f"**Deprecated argument `{argument}`:** {warning}\n"
        yield inspect.cleandoc(spec.__doc__ or "") + "\n"


def reference() -> str:
    """The whole hook reference as Markdown."""
    parts = [
        "# Hook reference\n",
        "Generated from the hook specifications' docstrings by `make hooks-doc`; do not edit "
        "by hand. How to write a plugin: [plugins.md](plugins.md); what may change between "
        "versions: [plugin-api.md](plugin-api.md).\n",
    ]
    for name, title in SPEC_MODULES:
        module = importlib.import_module(name)
        parts.append(f"## {title} (`{name}`)\n")
        parts.append(inspect.cleandoc(module.__doc__ or "") + "\n")
        parts.extend(_entries(module))
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference(), end="")
