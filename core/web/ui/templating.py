"""The Jinja2 environment of the staff UI: autoescaped, translated, locale-formatted.

Templates are looked up in the core's folder first, then in each enabled module's
``template_dirs`` under the module's name (``"operational/pipeline.html"``), so a module ships
its own templates and extends the core's layout without copying it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from markupsafe import Markup

from core import i18n

CORE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class Translator:
    """gettext for the current request's language, over the merged catalogs."""

    def __init__(self, catalogs: i18n.Catalogs) -> None:
        self.catalogs = catalogs

    def gettext(self, message: str) -> str:
        """``message`` in the current language."""
        return self.catalogs.get(i18n.current_language()).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The singular or plural of a message in the current language."""
        return self.catalogs.get(i18n.current_language()).ngettext(singular, plural, n)

    def translate(self, value: object) -> str:
        """A label or message held in a variable, translated, as *plain text*.

        Templates use ``tr(value)`` for these, never ``_(value)``: Jinja's ``_()`` marks its
        result as safe HTML, which is right for literal msgids only. ``tr`` leaves escaping to
        autoescape, so text that came from users or URLs is always shown as text.
        """
        if value is None:
            return ""
        catalog = self.catalogs.get(i18n.current_language())
        if isinstance(value, i18n.Msg):
            return catalog.gettext(value.msgid) % value.params
        return catalog.gettext(str(value))


def build_environment(
    module_templates: Iterable[tuple[str, Path]], translator: Translator, timezone: str
) -> Environment:
    """The environment for the core's templates and those of ``module_templates``."""
    prefixed = {module: FileSystemLoader(str(path)) for module, path in module_templates}
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(CORE_TEMPLATES)), PrefixLoader(prefixed)]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        translator.gettext, translator.ngettext, newstyle=True
    )

    def language() -> str:
        return i18n.current_language()

    env.filters["number"] = lambda v: i18n.format_number(v, language())
    env.filters["money"] = lambda v, currency="VND": i18n.format_money(v, currency, language())
    env.filters["datetime"] = lambda v: i18n.format_datetime(v, language(), timezone)
    env.filters["share"] = lambda v, decimals=1: i18n.format_share(v, language(), decimals)
    env.filters["digits"] = lambda v: i18n.native_digits(str(v), language())
    env.globals["LANGUAGES"] = i18n.LANGUAGES
    env.globals["tr"] = translator.translate
    return env


def render_fragment(env: Environment, template: str, **context: Any) -> Markup:
    """Render ``template`` to safe HTML for embedding in a page (slots, tabs, widgets)."""
    return Markup(env.get_template(template).render(**context))
