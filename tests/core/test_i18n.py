"""The shipped translations are complete and usable.

Messages are extracted from the current sources with the method map and keywords of
``babel.cfg`` (the same file ``make messages`` uses), so a string added to a template or marked
with ``N_`` fails here until it is in every catalog and translated.
"""

from __future__ import annotations

import configparser
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po

from core import i18n

ROOT = Path(__file__).resolve().parents[2]
BABEL_CFG = ROOT / "babel.cfg"
TRANSLATED = ("vi", "fa")
PLURAL_FORMS = {"vi": (1, "0"), "fa": (2, "(n > 1)")}
# A printf conversion as Python's % operator reads it: %(name)s, %s, %d, %%...
CONVERSION = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]")
PERSIAN_DIGITS = set("۰۱۲۳۴۵۶۷۸۹")


@cache
def source_messages() -> dict[str, tuple[str, ...]]:
    """Every msgid in the product sources: singular msgid -> all its msgids (with plural)."""
    with BABEL_CFG.open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, str(BABEL_CFG))
    parser = configparser.RawConfigParser()
    parser.read(BABEL_CFG, encoding="utf-8")
    keywords = dict(DEFAULT_KEYWORDS)
    for section in parser.sections():
        if parser.has_option(section, "keywords"):
            keywords.update(parse_keywords(parser.get(section, "keywords").split()))
    found: dict[str, tuple[str, ...]] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        # Product code only: the core and the built-in modules, never tests/ or the venv.
        assert Path(filename).parts[0] in {"core", "plugins"}, f"babel.cfg extracts from {filename}"
        ids = (message,) if isinstance(message, str) else tuple(m for m in message if m)
        if ids and ids[0]:
            found[ids[0]] = ids
    return found


def load_catalog(language: str) -> Catalog:
    path = i18n.CORE_LOCALE_DIR / language / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"
    assert path.is_file(), f"{path} is missing: run `make messages` and translate it"
    with path.open("rb") as handle:
        return read_po(handle, locale=language)


def conversions(text: str) -> Counter[str]:
    """The % conversions of ``text``; a ``%`` that starts none counts as ``"%?"``."""
    found = Counter(CONVERSION.findall(text))
    stray = CONVERSION.sub("", text).count("%")
    if stray:
        found["%?"] += stray
    return found


def test_extraction_finds_the_ui_strings() -> None:
    messages = source_messages()
    # One from a template, one marked with N_ in Python, one from core/locale/ui_terms.py.
    assert {"Sign in", "Customers", "Administrator", "%(count)s records"} <= set(messages)
    assert len(messages) > 100


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_msgid_is_translated(language: str) -> None:
    catalog = load_catalog(language)
    missing = []
    for msgid, ids in sorted(source_messages().items()):
        entry = catalog.get(ids if len(ids) > 1 else msgid)
        strings = entry.string if entry is not None else ""
        forms = strings if isinstance(strings, tuple | list) else (strings,)
        if entry is None or entry.fuzzy or not all(s.strip() for s in forms):
            missing.append(msgid)
    assert not missing, (
        f"{len(missing)} msgid(s) lack a {language} translation; run `make messages`, then "
        f"translate them in core/locale/{language}/LC_MESSAGES/messages.po:\n"
        + "\n".join(f"  {m!r}" for m in missing)
    )


@pytest.mark.parametrize("language", TRANSLATED)
def test_no_fuzzy_entries_and_correct_plural_forms(language: str) -> None:
    catalog = load_catalog(language)
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not fuzzy, f"fuzzy entries in {language}: review and unmark them: {fuzzy}"
    assert (catalog.num_plurals, catalog.plural_expr) == PLURAL_FORMS[language]


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_the_placeholders(language: str) -> None:
    wrong = []
    for entry in load_catalog(language):
        if not entry.id or not entry.string:
            continue
        if isinstance(entry.id, str):
            if conversions(entry.string) != conversions(entry.id):
                wrong.append((entry.id, entry.string))
        else:
            # A form may leave out the number (one form reads "one record"); none adds any.
            allowed = conversions(entry.id[0]) | conversions(entry.id[1])
            wrong += [(entry.id, s) for s in entry.string if conversions(s) - allowed]
    assert not wrong, "placeholders differ from the msgid (keep %(name)s as is, % as %%):\n" + (
        "\n".join(f"  {msgid!r} -> {text!r}" for msgid, text in wrong)
    )


def test_catalogs_translate_at_runtime() -> None:
    catalogs = i18n.Catalogs()
    assert catalogs.get("vi").gettext("Sign in") == "Đăng nhập"
    assert catalogs.get("fa").gettext("Sign in") == "ورود"
    assert catalogs.get("vi").gettext("Customers") == "Khách hàng"
    assert catalogs.get("fa").gettext("Customer") == "مشتری"
    assert catalogs.get("en").gettext("Sign in") == "Sign in"
    assert catalogs.get("vi").gettext("%(count)s records") % {"count": 3} == "3 bản ghi"
    fa_plural = catalogs.get("fa").plural  # type: ignore[attr-defined]
    assert [fa_plural(n) for n in (0, 1, 2, 5)] == [0, 0, 1, 1]
    assert catalogs.get("vi").plural(5) == 0  # type: ignore[attr-defined]


def test_money_and_numbers_follow_the_locale() -> None:
    # Babel separates the amount and the symbol with a no-break space (U+00A0).
    assert i18n.format_money(1234500, "VND", "vi") == "1.234.500\u00a0₫"
    assert i18n.format_money(150000, "VND", "vi") == "150.000\u00a0₫"  # no decimals for đồng
    assert i18n.format_money(123450, "USD", "vi") == "1.234,50\u00a0US$"
    persian = i18n.format_money(1234500, "VND", "fa")
    assert "۱٬۲۳۴٬۵۰۰" in persian and "₫" in persian
    assert not any(c.isascii() and c.isdigit() for c in persian)
    assert set(i18n.format_number(1234567, "fa")) & PERSIAN_DIGITS
    assert not any(c.isascii() and c.isdigit() for c in i18n.format_number(1234567, "fa"))
