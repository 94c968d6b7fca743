"""Checking and cleaning customer fields, shared by the API, the importer and the demo.

Each function returns the clean value or raises :class:`FieldError` naming the field.
"""

from __future__ import annotations

import re

from core.customers.models import KINDS, PERSON

MAX_TAGS = 20
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TEXT_LIMITS = {
    "display_name": 200,
    "given_name": 100,
    "family_name": 100,
    "address": 2000,
    "source_channel": 30,
    "external_ref": 100,
}


class FieldError(ValueError):
    """A field value that cannot be accepted; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def text(field: str, value: str | None) -> str | None:
    """Trimmed text with inner runs of spaces folded, ``None`` when empty; length-checked."""
    if not value:
        return None
    cleaned = " ".join(value.split())
    if not cleaned:
        return None
    limit = TEXT_LIMITS.get(field, 200)
    if len(cleaned) > limit:
        raise FieldError(field, f"{field} is longer than {limit} characters")
    if _CONTROL.search(cleaned):
        raise FieldError(field, f"{field} contains control characters")
    return cleaned


def kind(value: str | None) -> str:
    """``person`` (the default) or ``company``."""
    cleaned = (value or PERSON).strip().lower()
    if cleaned not in KINDS:
        raise FieldError("kind", f"kind must be one of {', '.join(KINDS)}, not {value!r}")
    return cleaned


def country(value: str | None) -> str | None:
    """An ISO 3166 alpha-2 code, upper-cased."""
    if not value or not (cleaned := value.strip()):
        return None
    if not _COUNTRY.match(cleaned):
        raise FieldError("country", f"country must be a two-letter code such as VN, not {value!r}")
    return cleaned.upper()


def language(value: str | None) -> str | None:
    """A language code such as ``vi``, ``fa`` or ``en-GB``."""
    if not value or not (cleaned := value.strip()):
        return None
    if not _LANGUAGE.match(cleaned):
        raise FieldError("language", f"language must be a code such as vi or fa, not {value!r}")
    return cleaned


def tags(values: list[str] | str | None) -> list[str]:
    """Lower-cased, trimmed, unique tags (a string is split on ``;`` or ``,``)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = re.split(r"[;,]", values)
    cleaned: list[str] = []
    for raw in values:
        tag = _SPACES.sub(" ", str(raw)).strip().lower()
        if not tag:
            continue
        if len(tag) > 50:
            raise FieldError("tags", f"tag {tag[:20]!r}... is longer than 50 characters")
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise FieldError("tags", f"at most {MAX_TAGS} tags")
    return sorted(cleaned)


def display_name(
    given: str | None,
    family: str | None,
    explicit: str | None,
    country_code: str | None,
    language_code: str | None,
) -> str:
    """The explicit display name, else the person's names in the order of their culture.

    Vietnamese write the family name first (Nguyễn Văn Đức); others given name first.
    """
    if explicit:
        return explicit
    parts = [p for p in (given, family) if p]
    if not parts:
        raise FieldError("display_name", "display_name is required (or given_name/family_name)")
    family_first = country_code == "VN" or (language_code or "").startswith("vi")
    if family_first:
        parts = [p for p in (family, given) if p]
    return " ".join(parts)
