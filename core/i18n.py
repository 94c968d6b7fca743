"""Translations and locale formatting for the staff UI.

Catalogs are gettext ``.po`` files: the core's in ``core/locale`` and each enabled module's in
the folders its ``locale_dirs`` hook returns. They are compiled in memory when the app starts
(no binary ``.mo`` files in the repository). English is the source language; Vietnamese and
Persian ship complete, and a test checks that no msgid is left untranslated.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import gettext
import io
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

LANGUAGES = {"en": "English", "vi": "Tiếng Việt", "fa": "فارسی"}
DEFAULT_LANGUAGE = "en"
RTL = frozenset({"fa", "ar", "he", "ur"})
CORE_LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"

# Babel formats with the locale's separators but Latin digits; Persian readers expect their own.
_NATIVE_DIGITS = {"fa": str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")}

_TO_LATIN = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")

_language: contextvars.ContextVar[str] = contextvars.ContextVar("language", default="en")


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


class Msg(str):
    """A message to translate where it is shown, with its parameters.

    ``str(msg)`` is the English text, so it works wherever a string does (logs, JSON, tests);
    the UI looks up ``msgid`` and fills in ``params``. Extracted like ``N_``.
    """

    msgid: str
    params: dict[str, object]

    def __new__(cls, msgid: str, **params: object) -> Msg:
        """``Msg("At most %(limit)s characters.", limit=60)``."""
        self = super().__new__(cls, msgid % params if params else msgid)
        self.msgid, self.params = msgid, params
        return self


@functools.lru_cache(maxsize=32)
def _locale(language: str) -> Locale:
    """The Babel locale of ``language`` (parsed once: parsing reads locale data files)."""
    return Locale.parse(language)


@functools.lru_cache(maxsize=8)
def _zone(name: str) -> dt.tzinfo:
    import zoneinfo

    return zoneinfo.ZoneInfo(name)


def _compile(po_path: Path) -> gettext.GNUTranslations:
    with po_path.open("rb") as handle:
        catalog = read_po(handle)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class Catalogs:
    """The merged translations of the core and enabled modules, per language."""

    def __init__(self, dirs: Iterable[Path] = ()) -> None:
        self.translations: dict[str, gettext.NullTranslations] = {}
        for language in LANGUAGES:
            merged: gettext.NullTranslations = gettext.NullTranslations()
            # Modules first, core last as fallback: a module's catalog may translate its own
            # labels without touching the core's.
            for folder in [*dirs, CORE_LOCALE_DIR]:
                po = Path(folder) / language / "LC_MESSAGES" / f"{DOMAIN}.po"
                if po.is_file():
                    translation = _compile(po)
                    if isinstance(merged, gettext.GNUTranslations):
                        merged.add_fallback(translation)
                    else:
                        merged = translation
            self.translations[language] = merged

    def get(self, language: str) -> gettext.NullTranslations:
        """The translations for ``language`` (English when unknown)."""
        return self.translations.get(language) or gettext.NullTranslations()


def pick_language(wanted: str | None) -> str:
    """``wanted`` if we ship it, else English."""
    return wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE


def set_language(language: str) -> contextvars.Token:
    """Make ``language`` the current one for this request; returns the token to reset it."""
    return _language.set(pick_language(language))


def current_language() -> str:
    """The language of the current request."""
    return _language.get()


def is_rtl(language: str) -> bool:
    """Whether ``language`` is written right to left."""
    return language in RTL


def format_number(value: int | float | Decimal | None, language: str) -> str:
    """``value`` with the locale's grouping and decimal signs (empty for ``None``)."""
    if value is None:
        return ""
    text = format_decimal(value, locale=_locale(language), numbering_system="default")
    return native_digits(text, language)


def format_share(value: float | Decimal | None, language: str, decimals: int = 1) -> str:
    """A share (0.256) as a percentage for the locale (25.6 %, Persian digits in Persian)."""
    if value is None:
        return ""
    from babel.numbers import format_percent

    pattern = "#,##0" + ("." + "0" * decimals if decimals else "") + "%"
    text = format_percent(value, pattern, locale=_locale(language), numbering_system="default")
    return native_digits(text, language)


def format_money(minor: int | None, currency: str, language: str) -> str:
    """An amount in minor units (đồng, cents) for the locale: VND has no decimals."""
    if minor is None:
        return ""
    from core.money import minor_digits

    amount = Decimal(minor).scaleb(-minor_digits(currency))
    text = format_currency(amount, currency, locale=_locale(language), numbering_system="default")
    return native_digits(text, language)


def parse_amount(text: str, language: str) -> Decimal:
    """An amount typed by a person, read with the locale's separators (``1.250.000`` in
    Vietnamese, ``1,250,000`` in English; Persian digits accepted); ``ValueError`` if unreadable.
    """
    from babel.numbers import NumberFormatError, parse_decimal

    plain = text.strip().translate(_TO_LATIN).replace("\u066c", ",").replace("\u066b", ".")
    for locale in dict.fromkeys((language, DEFAULT_LANGUAGE)):
        try:
            return parse_decimal(plain, locale=_locale(locale), strict=True)
        except NumberFormatError:
            continue
    raise ValueError(N_("Enter an amount such as 1250000."))


def format_datetime(
    value: dt.datetime | dt.date | None, language: str, timezone: str | None = None
) -> str:
    """A date, or a date and time shown in ``timezone``, in the locale's medium format."""
    if value is None:
        return ""
    from babel.dates import format_date
    from babel.dates import format_datetime as babel_datetime

    locale = _locale(language)
    if isinstance(value, dt.datetime):
        zone = _zone(timezone) if timezone else None
        text = babel_datetime(value, format="medium", tzinfo=zone, locale=locale)
    else:
        text = format_date(value, format="medium", locale=locale)
    return native_digits(text, language)


def native_digits(text: str, language: str) -> str:
    """``text`` with Latin digits written in the language's own (Persian: ۰-۹)."""
    table = _NATIVE_DIGITS.get(language)
    return text.translate(table) if table else text
