"""``crm plugins new NAME``: write a pip-installable plugin package to start from.

The package is rendered from the files under ``template/`` (every one ends in ``.tmpl``, so
that neither setuptools, pytest nor ruff takes the templates for code of the product). Path
parts ``{name}`` and ``{package}`` and the placeholders ``$name``, ``$package``,
``$distribution``, ``$title`` and ``$core_revision`` in the files are filled in with
:class:`string.Template`, whose syntax leaves Jinja2 templates and Python code alone.
"""

from __future__ import annotations

import keyword
import shutil
import string
from pathlib import Path

from core.errors import CrmError
from core.manifest import NAME_RE

TEMPLATE = Path(__file__).parent / "template"
SUFFIX = ".tmpl"
#: The core revision that creates ``core_customer`` and ``core_user``, which the note refers to.
CORE_REVISION = "core_0002"
#: Names a module may not take: the core's own prefix (tables, permissions, checklist ids).
RESERVED = frozenset({"core"})
#: Alembic keeps the current revision ids in a VARCHAR(32) column (PostgreSQL enforces it), and
#: a module's revision ids are ``<name>_0001``...
NAME_MAX = 32 - len("_0001")


class ScaffoldError(CrmError):
    """The plugin cannot be written: a bad name or a directory already in use."""


def create_plugin(name: str, directory: Path | None = None) -> Path:
    """Write a new plugin package called ``name``; return the directory holding it.

    The distribution is ``crm-<name>`` (underscores become hyphens), the package ``crm_<name>``
    and the entry point ``<name>``. ``directory`` defaults to ``./crm-<name>``; it must not
    exist or be empty. Raises :class:`ScaffoldError`, writing nothing, for a name that is not a
    valid module name (at most :data:`NAME_MAX` characters), a Python keyword, a core command or an
    installed module, and for a directory that is a file or holds anything.
    """
    check_name(name)
    distribution = "crm-" + name.replace("_", "-")
    root = Path(directory) if directory is not None else Path.cwd() / distribution
    _check_directory(root)
    files = render(name)
    _write(root, files)
    return root


def check_name(name: str) -> None:
    """Raise :class:`ScaffoldError` saying why ``name`` cannot name a new module."""
    if not NAME_RE.match(name):
        raise ScaffoldError(
            f"plugin name {name!r}: use 2-{NAME_MAX} lower-case letters, digits or '_',"
            " starting with a letter (it names the module, its tables and its commands; at"
            f" most {NAME_MAX} so that its migrations' ids, {name}_0001..., fit the database's"
            " 32-character revision column)"
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(f"plugin name {name!r}: a Python keyword; choose another name")
    if name in RESERVED or name in _core_commands():
        raise ScaffoldError(
            f"plugin name {name!r}: taken by the core (`crm {name}`); choose another name"
        )
    if name in _installed_modules():
        raise ScaffoldError(
            f"plugin name {name!r}: a module of that name is already installed"
            " (see `crm modules list`); choose another name"
        )


def render(name: str) -> dict[Path, str]:
    """Every file of the package for module ``name``: relative path → text."""
    values = {
        "name": name,
        "package": f"crm_{name}",
        "distribution": "crm-" + name.replace("_", "-"),
        "title": name.replace("_", " ").capitalize(),
        "core_revision": CORE_REVISION,
    }
    files: dict[Path, str] = {}
    for source in sorted(TEMPLATE.rglob("*" + SUFFIX)):
        relative = source.relative_to(TEMPLATE).as_posix()[: -len(SUFFIX)]
        target = Path(relative.format(name=name, package=values["package"]))
        text = source.read_text(encoding="utf-8")
        files[target] = string.Template(text).substitute(values)
    return files


def _core_commands() -> set[str]:
    from cli import ALIASES, CORE_COMMANDS

    return {*CORE_COMMANDS, *ALIASES}


def _installed_modules() -> set[str]:
    from importlib.metadata import entry_points

    return {ep.name for ep in entry_points(group="crm.plugins")}


def _check_directory(root: Path) -> None:
    if root.is_dir():
        if any(root.iterdir()):
            raise ScaffoldError(f"directory {root}: not empty; choose another with --dir")
    elif root.exists():
        raise ScaffoldError(f"directory {root}: a file is in the way; choose another with --dir")


def _write(root: Path, files: dict[Path, str]) -> None:
    """Write ``files`` under ``root``; on failure remove what was written."""
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except BaseException:
        if created:
            shutil.rmtree(root, ignore_errors=True)
        else:
            for child in root.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
        raise
