"""Normalised forms of names and contact identities, so equal things compare equal.

``search_key`` folds a name for case- and accent-insensitive prefix search (Vietnamese tones,
Persian and Arabic letter variants). The ``normalise_*`` functions turn an e-mail address, a
phone number or another channel's identity into the one string stored and compared, or raise
``IdentityError``. Phone numbers and e-mail addresses have fast paths for the common case,
because imports normalise millions of them; they give exactly the results of the slow paths.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

CHANNELS = ("email", "phone", "zalo", "facebook", "web", "external")


class IdentityError(ValueError):
    """An identity value that cannot be normalised; .field names the channel, str() says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[type[IdentityError], tuple[str, str]]:
        return (type(self), (self.field, str(self)))


# --- search keys -----------------------------------------------------------------------------

_SEARCH_KEY_LETTERS = {
    "đ": "d",
    "Đ": "d",
    "\u064a": "\u06cc",  # Arabic yeh ي → Farsi yeh ی
    "\u0649": "\u06cc",  # alef maksura ى → Farsi yeh ی
    "\u0643": "\u06a9",  # Arabic kaf ك → keheh ک
    "\u0623": "\u0627",  # أ → ا
    "\u0625": "\u0627",  # إ → ا
    "\u0622": "\u0627",  # آ → ا
    "\u0671": "\u0627",  # alef wasla ٱ → ا
    "\u0624": "\u0648",  # ؤ → و
    "\u0626": "\u06cc",  # ئ → ی
    "\u0629": "\u0647",  # teh marbuta ة → ه
    "\u06d5": "\u0647",  # what NFKD leaves of ۀ (heh with yeh above) → ه
    "\u0640": None,  # tatweel
}


def _search_key_char(code: int) -> int | str | None:
    """What one code point becomes in a search key, by its Unicode category."""
    char = chr(code)
    category = unicodedata.category(char)
    if category in ("Mn", "Me", "Cf"):
        return None
    if char.isspace() or category[0] in "PZ" or category == "Cc":
        return " "
    if category == "Nd":
        return str(unicodedata.decimal(char))
    return code


class _SearchKeyTable(dict[int, Any]):
    """``str.translate`` table: precomputed for common blocks, filled in lazily for the rest."""

    def __missing__(self, code: int) -> int | str | None:
        value = _search_key_char(code)
        self[code] = value
        return value


def _build_search_key_table() -> _SearchKeyTable:
    blocks = [
        range(0x0000, 0x0780),  # Latin, combining marks, Greek, Cyrillic, Arabic
        range(0x1AB0, 0x1B00),  # combining marks extended
        range(0x1DC0, 0x1E00),  # combining marks supplement
        range(0x2000, 0x2070),  # general punctuation, zero-width characters
        range(0x20D0, 0x2100),  # combining marks for symbols
        range(0x3000, 0x3040),  # CJK punctuation
        range(0xFE00, 0xFE10),  # variation selectors
        range(0xFEFF, 0xFF00),  # byte order mark
    ]
    table = _SearchKeyTable({code: _search_key_char(code) for block in blocks for code in block})
    table.update(str.maketrans(_SEARCH_KEY_LETTERS))
    return table


_SEARCH_KEY_TABLE = _build_search_key_table()


def search_key(text: str | None) -> str:
    """The case- and accent-insensitive key of ``text`` for prefix search of names.

    The rules, in order:

    1. Unicode NFKD (compatibility decomposition: ligatures, full-width and Arabic
       presentation forms become plain letters; accented letters become letter + marks).
    2. Casefold.
    3. Combining marks (categories Mn, Me) are dropped: every Vietnamese vowel and tone mark
       (ă â ê ô ơ ư, huyền sắc hỏi ngã nặng) and Arabic harakat. ``đ``/``Đ`` become ``d``.
    4. Persian and Arabic letter variants are unified: yeh ``ي`` and alef maksura ``ى`` → ``ی``,
       kaf ``ك`` → ``ک``, ``أ إ آ ٱ`` → ``ا``, ``ؤ`` → ``و``, ``ئ`` → ``ی``, teh marbuta ``ة``
       → ``ه``, ``ۀ`` → ``ه``; tatweel ``ـ`` is dropped.
    5. Every decimal digit (Arabic-Indic ``٠-٩``, Persian ``۰-۹`` and others) becomes ASCII.
    6. Format characters (category Cf: zero-width non-joiner, zero-width joiner and space,
       bidi marks, byte order mark) are removed, not turned into spaces: ``می‌خواهم`` and
       ``میخواهم`` have the same key.
    7. Whitespace, punctuation (category P*) and control characters are separators: each run of
       them becomes one space, and leading and trailing spaces go. Symbols (``+ $ =``) stay.

    ``None`` gives ``""``. ``search_key("  ĐẶNG   thị-Hoa ") == "dang thi hoa"``.
    """
    if not text:
        return ""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
    return " ".join(text.casefold().translate(_SEARCH_KEY_TABLE).split())


# --- e-mail ----------------------------------------------------------------------------------

_MAX_EMAIL = 254
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")
# A local part is a dot-atom (RFC 5322): runs of these characters (and, RFC 6531, of any
# non-ASCII letter) joined by single dots. Quotes, brackets, commas and the like cannot be sent
# to without quoting, and an address holding them breaks mail headers.
_ATEXT = "a-z0-9!#$%&'*+/=?^_`{|}~-"
_LOCAL_RE = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
_ASCII_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~-")
# A dot-atom of 1 to 64 characters, then a domain: the whole check for ASCII addresses.
_ASCII_EMAIL_RE = re.compile(rf"(?=[^@]{{1,64}}@){_LOCAL_RE.pattern}@{_DOMAIN_RE.pattern}")


def normalise_email(value: str) -> str:
    """``value`` as a stripped, lower-case address; an IDN domain in its ASCII ``xn--`` form.

    One ``@``; a local part of 1 to 64 characters: letters (any script), digits and
    ``!#$%&'*+/=?^_`{|}~-``, with single dots between them (a non-ASCII local part is also put
    in NFC); a domain of at least two dot-separated labels
    of letters, digits and hyphens, not starting or ending with ``-``; at most 254 characters in
    all. A non-ASCII domain is converted with IDNA 2008 and UTS 46 mapping
    (``user@bücher.de`` → ``user@xn--bcher-kva.de``). Anything else raises ``IdentityError``.
    """
    text = value.strip().lower()
    if text.isascii() and len(text) <= _MAX_EMAIL and _ASCII_EMAIL_RE.fullmatch(text):
        return text
    return _normalise_email_slow(value, text)


def _normalise_email_slow(value: str, text: str) -> str:
    """The general e-mail check, which also says what is wrong with an address."""

    def error(why: str) -> IdentityError:
        return IdentityError("email", f"{value!r} is not a valid e-mail address: {why}")

    if not text:
        raise IdentityError("email", "the e-mail address is empty")
    if text.count("@") != 1:
        raise error('it must contain exactly one "@"')
    local, domain = text.split("@")
    if not local.isascii():
        local = unicodedata.normalize("NFC", local)
    if not local:
        raise error('nothing before the "@"')
    if len(local) > 64:
        raise error('more than 64 characters before the "@"')
    if any(char.isspace() or unicodedata.category(char)[0] == "C" for char in local):
        raise error("it contains spaces or control characters")
    if any(char.isascii() and char != "." and char not in _ASCII_ATEXT for char in local):
        raise error(
            'before the "@" only letters, digits, dots and'
            " ! # $ % & ' * + / = ? ^ _ ` { | } ~ - may appear"
        )
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise error('a dot before the "@" may not come first, last or twice in a row')
    if not domain.isascii():
        import idna

        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except UnicodeError as exc:
            raise error(f"the domain is not a valid internationalised name ({exc})") from None
    if "." not in domain:
        raise error("the domain needs at least one dot")
    if not _DOMAIN_RE.fullmatch(domain):
        raise error(
            "the domain must be labels of letters, digits and hyphens, "
            "none starting or ending with a hyphen"
        )
    address = f"{local}@{domain}"
    if len(address) > _MAX_EMAIL:
        raise error(f"it is longer than {_MAX_EMAIL} characters")
    return address


# --- phone numbers ---------------------------------------------------------------------------

_MAX_FAST_PHONE_INPUT = 64
_FAST_PHONE_SHAPE = re.compile(r"\(?\+?\(?[0-9][0-9 ().\-/]*")
_PHONE_SEPARATORS = str.maketrans("", "", "+ ().-/")
_NUMBER_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


@dataclass(frozen=True, slots=True)
class _PhonePlan:
    """One region's numbering plan, compiled from phonenumbers' metadata for the fast path."""

    country_code: str
    international_prefix: re.Pattern[str]
    national_prefix: re.Pattern[str] | None
    general: re.Pattern[str]
    lengths: tuple[int, ...]
    local_only_lengths: frozenset[int]
    types_by_length: dict[int, re.Pattern[str]]

    def strip_national_prefix(self, number: str) -> str:
        """The national number as phonenumbers.parse leaves it after prefix stripping."""
        match = self.national_prefix.match(number) if self.national_prefix else None
        if match is None:
            return number
        stripped = number[match.end() :]
        if self.general.fullmatch(number) and not self.general.fullmatch(stripped):
            return number
        size = len(stripped)
        # parse() keeps the prefix when what remains is too short or of an impossible length.
        if size in self.local_only_lengths or size < self.lengths[0]:
            return number
        if size <= self.lengths[-1] and size not in self.lengths:
            return number
        return stripped

    def is_valid(self, national_number: str) -> bool:
        """Whether phonenumbers.is_valid_number holds for this national significant number."""
        types = self.types_by_length.get(len(national_number))
        return (
            types is not None
            and self.general.fullmatch(national_number) is not None
            and types.fullmatch(national_number) is not None
        )


@functools.cache
def _phone_plan(region: str) -> _PhonePlan | None:
    """The compiled plan for ``region``, or None where the fast path cannot mirror parse()."""
    import phonenumbers

    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    if metadata is None or metadata.national_prefix_transform_rule:
        return None
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(metadata.country_code, ())
    # is_valid_number judges by the region the number belongs to: that must be this one.
    if not regions or regions[0] != region:
        return None
    if len(regions) > 1 and metadata.leading_digits is not None:
        return None
    country_code = str(metadata.country_code)
    if any(
        int(country_code[:end]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE
        for end in range(1, len(country_code))
    ):
        return None
    general = metadata.general_desc
    if general is None or not general.national_number_pattern or not general.possible_length:
        return None
    lengths = tuple(sorted(general.possible_length))
    types_by_length: dict[int, re.Pattern[str]] = {}
    for length in lengths:
        patterns = []
        for name in _NUMBER_TYPES:
            desc = getattr(metadata, name)
            if desc is None or not desc.national_number_pattern:
                continue
            if desc.possible_length and length not in desc.possible_length:
                continue
            patterns.append(f"(?:{desc.national_number_pattern})")
        if patterns:
            types_by_length[length] = re.compile("|".join(patterns))
    return _PhonePlan(
        country_code=country_code,
        international_prefix=re.compile(metadata.international_prefix or "NonMatch"),
        national_prefix=(
            re.compile(metadata.national_prefix_for_parsing)
            if metadata.national_prefix_for_parsing
            else None
        ),
        general=re.compile(general.national_number_pattern),
        lengths=lengths,
        local_only_lengths=frozenset(general.possible_length_local_only),
        types_by_length=types_by_length,
    )


@functools.cache
def _plan_for_country_code(country_code: int) -> _PhonePlan | None:
    import phonenumbers

    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    # Only codes of a single region: elsewhere validity depends on which region matches.
    return _phone_plan(regions[0]) if regions and len(regions) == 1 else None


def _plan_for_number(digits: str) -> _PhonePlan | None:
    """The plan of the country whose code starts ``digits`` (codes are prefix-free)."""
    if digits.startswith("0"):
        return None
    for size in (1, 2, 3):
        plan = _plan_for_country_code(int(digits[:size]))
        if plan is not None:
            return plan
    return None


def _normalise_phone_fast(value: str, region: str) -> str | None:
    """E.164 for a plainly written valid number of ``region``; None when parse() must decide.

    Handles digits with spaces, dots, hyphens, slashes and parentheses, either in national form
    (with or without the national prefix) or as ``+`` and a country code whose main region has
    a plan (the default region's own, or another such as ``+98`` or ``+49``). It
    returns a number only when phonenumbers would give the same one, and never raises.
    """
    plan = _phone_plan(region)
    if plan is None or len(value) > _MAX_FAST_PHONE_INPUT:
        return None
    text = value.strip()
    if not _FAST_PHONE_SHAPE.fullmatch(text):
        return None
    digits = text.translate(_PHONE_SEPARATORS)
    if "+" in text[:2]:
        if len(digits) <= 2:
            return None
        if not digits.startswith(plan.country_code):
            plan = _plan_for_number(digits)
            if plan is None:
                return None
        number = digits[len(plan.country_code) :]
    elif plan.international_prefix.match(digits) or digits.startswith(plan.country_code):
        return None
    else:
        number = digits
    if len(number) < 2:
        return None
    national = plan.strip_national_prefix(number)
    if national.startswith("0") or len(national) > 17 or not plan.is_valid(national):
        return None
    return f"+{plan.country_code}{national}"


def _normalise_phone_full(value: str, region: str) -> str:
    """E.164 through phonenumbers.parse, is_valid_number and format_number, for any input."""
    import phonenumbers

    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise IdentityError("phone", f"{value!r} is not a valid phone number for region {region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_phone(value: str, region: str = "VN") -> str:
    """``value`` in E.164 (``+84912345678``), read as a number dialled in ``region``.

    Exactly what phonenumbers makes of it: ``0912 345 678``, ``0912.345.678``,
    ``(091) 234-5678``, ``+84 912 345 678`` and ``+84 0912 345 678`` all give ``+84912345678``.
    Digits without ``+`` and without the national prefix are read as phonenumbers reads them:
    as a national number (``912345678``), unless they start with the region's country code and
    are only valid without it (``84912345678`` → ``+84912345678``). An extension is dropped.
    A number that does not parse or is not valid (``is_valid_number``) raises ``IdentityError``.
    Plainly written numbers of the region take a fast path built from phonenumbers' metadata.
    """
    region = region.upper()
    fast = _normalise_phone_fast(value, region)
    if fast is not None:
        return fast
    if not value.strip():
        raise IdentityError("phone", "the phone number is empty")
    return _normalise_phone_full(value, region)


# --- other channels --------------------------------------------------------------------------

_ZALO_ID_RE = re.compile(r"[1-9][0-9]{0,31}")
_FACEBOOK_URL_RE = re.compile(
    r"(?:https?://)?(?:(?:www|m|mobile|web|touch|mbasic|business)\.)?(?:facebook\.com|fb\.com)"
    r"(?:/(?P<path>[^?#]*))?(?:\?(?P<query>[^#]*))?(?:#.*)?"
)
_FACEBOOK_HANDLE_RE = re.compile(r"[\w.\-]{1,100}")
_FACEBOOK_ID_RE = re.compile(r"[0-9]{1,30}")
_FACEBOOK_NOT_PROFILES = frozenset(
    {"people", "pages", "groups", "events", "watch", "share", "sharer.php", "profile.php"}
    | {"story.php", "photo.php", "permalink.php", "login", "home.php"}
)


_LONGEST_PHONE_DIGITS = 17


def _normalise_zalo(value: str, region: str) -> str:
    text = value.strip()
    if len(text) > _LONGEST_PHONE_DIGITS and _ZALO_ID_RE.fullmatch(text):
        return text  # longer than any phone number: a Zalo user id, no parsing needed
    try:
        return normalise_phone(text, region)
    except IdentityError:
        # A bare number that is not a phone number is a Zalo user id; a leading 0 or + says phone.
        if _ZALO_ID_RE.fullmatch(text):
            return text
    raise IdentityError("zalo", f"{value!r} is neither a phone number nor a numeric Zalo id")


def _normalise_facebook(value: str) -> str:
    text = value.strip().lower()
    if text.startswith("profile.php?"):
        text = f"facebook.com/{text}"
    url = _FACEBOOK_URL_RE.fullmatch(text)
    if url:
        segments = [part for part in (url["path"] or "").split("/") if part] or [""]
        if segments[0] == "profile.php":
            profile_id = parse_qs(url["query"] or "").get("id", [""])[0]
            text = profile_id if _FACEBOOK_ID_RE.fullmatch(profile_id) else ""
        elif segments[0] in ("people", "pages") and _FACEBOOK_ID_RE.fullmatch(segments[-1]):
            text = segments[-1]
        elif segments[0] in _FACEBOOK_NOT_PROFILES:
            text = ""
        else:
            text = segments[0]
    text = text.removeprefix("@")
    if not _FACEBOOK_HANDLE_RE.fullmatch(text):
        raise IdentityError(
            "facebook", f"{value!r} is not a Facebook username, numeric id or profile URL"
        )
    return text


def _bounded(channel: str, text: str, limit: int) -> str:
    if len(text) > limit:
        raise IdentityError(channel, f"a {channel} identity is at most {limit} characters")
    return text


def normalise_identity(channel: str, value: str, region: str = "VN") -> str:
    """The normalised form of ``value`` as an identity on ``channel`` (one of ``CHANNELS``).

    - email: ``normalise_email``; phone: ``normalise_phone`` in ``region``.
    - zalo: a phone number in E.164 if ``value`` is a valid one; otherwise a bare number
      (no leading 0 or +, up to 32 digits) is kept as a Zalo user id.
    - facebook: lower-cased; profile URLs on facebook.com or fb.com (any scheme and the www, m,
      web... subdomains) are reduced to the username (``https://www.facebook.com/Some.Name/``
      → ``some.name``) or the numeric id (``profile.php?id=123``, ``people/Name/123`` →
      ``123``); a leading ``@`` is dropped. The result is word characters, dots and hyphens.
    - web: the account name stripped and lower-cased, at most 200 characters.
    - external: stripped, case kept, at most 100 characters.

    Empty values, invalid values and unknown channels raise ``IdentityError``.
    """
    if channel not in CHANNELS:
        raise IdentityError(
            channel, f"unknown identity channel {channel!r}; expected one of {', '.join(CHANNELS)}"
        )
    if not value or not value.strip():
        raise IdentityError(channel, f"the {channel} identity is empty")
    if channel == "email":
        return normalise_email(value)
    if channel == "phone":
        return normalise_phone(value, region)
    if channel == "zalo":
        return _normalise_zalo(value, region)
    if channel == "facebook":
        return _normalise_facebook(value)
    if channel == "web":
        return _bounded(channel, value.strip().lower(), 200)
    return _bounded(channel, value.strip(), 100)
