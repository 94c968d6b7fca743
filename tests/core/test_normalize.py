"""Search keys and identity normalisation: names, e-mail addresses, phone numbers, channels."""

from __future__ import annotations

import pickle
import random
import unicodedata

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.normalize import (
    CHANNELS,
    IdentityError,
    _normalise_email_slow,
    _normalise_phone_fast,
    _normalise_phone_full,
    _phone_plan,
    normalise_email,
    normalise_identity,
    normalise_phone,
    search_key,
)

PROPERTY = settings(max_examples=500, deadline=None, database=None, derandomize=True)


def outcome(function, *args):
    """What a call gives: ("ok", result) or ("error", field) for IdentityError."""
    try:
        return ("ok", function(*args))
    except IdentityError as exc:
        return ("error", exc.field)


# --- search_key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marked", "plain"),
    [
        ("a à á ả ã ạ", "a a a a a a"),
        ("ă ằ ắ ẳ ẵ ặ", "a a a a a a"),
        ("â ầ ấ ẩ ẫ ậ", "a a a a a a"),
        ("ê ề ế ể ễ ệ", "e e e e e e"),
        ("ô ồ ố ổ ỗ ộ", "o o o o o o"),
        ("ơ ờ ớ ở ỡ ợ", "o o o o o o"),
        ("ư ừ ứ ử ữ ự", "u u u u u u"),
        ("i ì í ỉ ĩ ị y ỳ ý ỷ ỹ ỵ", "i i i i i i y y y y y y"),
        ("đ Đ", "d d"),
    ],
)
def test_every_vietnamese_vowel_and_tone_mark_is_dropped(marked, plain):
    assert search_key(marked) == plain
    assert search_key(marked.upper()) == plain


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Nguyễn Văn Đức", "nguyen van duc"),
        ("TRẦN THỊ HƯƠNG", "tran thi huong"),
        ("Phạm Ngọc Ánh", "pham ngoc anh"),
        ("Lê Hoàng Phương", "le hoang phuong"),
        ("Võ Thị Mỹ Dung", "vo thi my dung"),
        ("Bùi Quốc Việt", "bui quoc viet"),
    ],
)
def test_vietnamese_names(name, key):
    assert search_key(name) == key
    assert search_key(unicodedata.normalize("NFD", name)) == key


def test_a_typed_prefix_matches_the_full_name():
    assert search_key("Nguyễn Văn Đức").startswith(search_key("nguyen VĂN đ"))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("  ĐẶNG   thị-Hoa ", "dang thi hoa"),
        ("O’Brien, J.", "o brien j"),
        ("tab\tnew\nline\r\n", "tab new line"),
        ("Công ty TNHH (Hà Nội) / chi_nhánh #2", "cong ty tnhh ha noi chi nhanh 2"),
        ("a\u00a0b\u3000c", "a b c"),
        ("A+B = C", "a+b = c"),
        ("ﬁnance ＡＢＣ １２３", "finance abc 123"),
        ("  ,.;:!?  ", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_whitespace_and_punctuation_become_single_spaces(text, key):
    assert search_key(text) == key


@pytest.mark.parametrize(
    ("arabic", "persian"),
    [
        ("علي", "علی"),  # Arabic yeh
        ("مصطفى", "مصطفی"),  # alef maksura
        ("كريم", "کریم"),  # Arabic kaf
        ("أحمد", "احمد"),  # alef with hamza above
        ("إبراهيم", "ابراهیم"),  # alef with hamza below
        ("آرش", "ارش"),  # alef with madda
        ("مؤمن", "مومن"),  # waw with hamza
        ("رئيس", "رییس"),  # yeh with hamza
        ("فاطمة", "فاطمه"),  # teh marbuta
        ("خانهٔ", "خانه"),  # hamza above heh
        ("خانۀ", "خانه"),  # heh with yeh above
        ("محـــمد", "محمد"),  # tatweel
        ("مُحَمَّد", "محمد"),  # harakat
        ("ﻋﻠﻲ", "علی"),  # presentation forms
    ],
)
def test_persian_and_arabic_letter_variants_are_unified(arabic, persian):
    assert search_key(arabic) == search_key(persian) == persian


def test_zero_width_characters_are_removed_not_spaced():
    assert search_key("می\u200cخواهم") == "میخواهم"
    assert search_key("Nguy\u200bễn\u200d \ufeffVăn\u200e") == "nguyen van"
    assert search_key("\u200c") == ""


def test_arabic_indic_and_persian_digits_become_ascii():
    assert search_key("۱۲۳") == "123"
    assert search_key("٤٥٦") == "456"
    assert search_key("۰۹۱۲ ۳۴۵ ۶۷۸۹") == "0912 345 6789"
    assert search_key("شرکت ۲، آرش؟") == "شرکت 2 ارش"


def test_rare_characters_are_handled_like_common_ones():
    assert search_key("Ǆemal ŁÓDŹ Straße") == "dzemal łodz strasse"
    assert search_key("\U0001d400\U0001d401") == "ab"  # mathematical bold letters, NFKD
    assert search_key("x\u0f7ay") == "xy"  # a combining mark outside the precomputed blocks


# --- normalise_email -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Nguyen.Van@Example.COM ", "nguyen.van@example.com"),
        ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
        ("first_o'neil-x@my-domain.vn", "first_o'neil-x@my-domain.vn"),
        ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de"),
        ("nguyễn@việtnam.vn", "nguyễn@xn--vitnam-jk8b.vn"),
        ("user@bücher.de", "user@xn--bcher-kva.de"),
        ("USER@BÜCHER.DE", "user@xn--bcher-kva.de"),
        ("ali@مثال.ir", "ali@xn--mgbh0fb.ir"),
        ("info@例え。テスト", "info@xn--r8jz45g.xn--zckzah"),
        ("ĐỨC@Example.com", "đức@example.com"),
    ],
)
def test_valid_email_addresses(value, expected):
    assert normalise_email(value) == expected


def test_non_ascii_local_parts_are_composed():
    assert normalise_email(unicodedata.normalize("NFD", "Đức@example.com")) == "đức@example.com"


def test_email_length_limits_are_inclusive():
    local = "a" * 64
    assert normalise_email(f"{local}@example.com") == f"{local}@example.com"
    domain = ".".join(["b" * 63, "c" * 63, "d" * 63, "e" * 60])
    assert len(f"a@{domain}") == 254
    assert normalise_email(f"a@{domain}") == f"a@{domain}"
    with pytest.raises(IdentityError, match="longer than 254"):
        normalise_email(f"ab@{domain}")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("no-at-sign.example.com", "exactly one"),
        ("a@b@example.com", "exactly one"),
        ("@example.com", "nothing before"),
        ("a" * 65 + "@example.com", "64 characters"),
        ("a b@example.com", "spaces or control"),
        ("a\x01b@example.com", "spaces or control"),
        ("a\u200bb@example.com", "spaces or control"),
        ('"><svg/onload=x>@example.com', "only letters, digits"),
        ('a"b@example.com', "only letters, digits"),
        ("a(comment)b@example.com", "only letters, digits"),
        ("a,b;c@example.com", "only letters, digits"),
        (".a@example.com", "first, last or twice"),
        ("a.@example.com", "first, last or twice"),
        ("a..b@example.com", "first, last or twice"),
        ("a@example", "at least one dot"),
        ("a@-example.com", "hyphen"),
        ("a@example-.com", "hyphen"),
        ("a@exa_mple.com", "hyphen"),
        ("a@example..com", "hyphen"),
        ("a@.example.com", "hyphen"),
        ("a@example.com.", "hyphen"),
        ("a@" + "b" * 64 + ".com", "hyphen"),
        ("a@ex ample.com", "hyphen"),
        ("user@☃.com", "internationalised"),
        ("user@exam\u200cple.de", "internationalised"),
        ("user@bü--cher.de", "internationalised"),
    ],
)
def test_invalid_email_addresses(value, why):
    with pytest.raises(IdentityError, match=why) as error:
        normalise_email(value)
    assert error.value.field == "email"


@PROPERTY
@given(st.text(alphabet="aZ09.-_+'@ \x00\x7f", max_size=30))
def test_the_ascii_fast_path_agrees_with_the_general_check(value):
    fast = outcome(normalise_email, value)
    slow = outcome(_normalise_email_slow, value, value.strip().lower())
    assert fast == slow


# --- normalise_phone -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "0912 345 678",
        "0912345678",
        "0912.345.678",
        "0912-345-678",
        "(091) 234-5678",
        "+84 912 345 678",
        "+84912345678",
        "+84 (0) 912 345 678",
        "+84 0912 345 678",
        "(+84) 912 345 678",
        " 0912 345 678 ",
        "912345678",
        "84912345678",
        "0084 912 345 678",
        "０９１２３４５６７８",
        "0912 345 678 ext. 12",
        "Tel: 0912 345 678",
    ],
)
def test_vietnamese_mobile_formats(value):
    assert normalise_phone(value) == "+84912345678"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("024 3826 1234", "+842438261234"),
        ("028 3823 4567", "+842838234567"),
        ("+84 24 3826 1234", "+842438261234"),
        ("0352 345 678", "+84352345678"),
        ("0702 345 678", "+84702345678"),
        ("0862 345 678", "+84862345678"),
        ("1900 1234", "+8419001234"),
        ("+1 201 555 0123", "+12015550123"),
    ],
)
def test_vietnamese_landlines_other_series_and_foreign_numbers(value, expected):
    assert normalise_phone(value) == expected


@pytest.mark.parametrize(
    "value",
    ["0912 345 6789", "09123456789", "+98 912 345 6789", "0098 912 345 6789", "۰۹۱۲۳۴۵۶۷۸۹"],
)
def test_iranian_numbers_in_region_ir(value):
    assert normalise_phone(value, "IR") == "+989123456789"
    assert normalise_phone("021 8888 1234", "ir") == "+982188881234"


@pytest.mark.parametrize(
    "value",
    ["", "   ", "123", "0912", "0912 345 678 901 234", "abc", "+84 123", "0000000000", "+999 1"],
)
def test_invalid_phone_numbers(value):
    with pytest.raises(IdentityError) as error:
        normalise_phone(value)
    assert error.value.field == "phone"
    if value.strip():
        assert repr(value) in str(error.value)
        assert "region VN" in str(error.value)


def test_a_number_of_another_region_is_invalid_in_national_form():
    with pytest.raises(IdentityError, match="region VN"):
        normalise_phone("0912 345 6789")  # an Iranian mobile, written as Iranians do


def test_the_fast_path_takes_plain_numbers_of_the_region():
    assert _normalise_phone_fast("0912 345 678", "VN") == "+84912345678"
    assert _normalise_phone_fast("+84912345678", "VN") == "+84912345678"
    assert _normalise_phone_fast("(091) 234-5678", "VN") == "+84912345678"
    assert _normalise_phone_fast("0912 345 6789", "IR") == "+989123456789"
    assert _normalise_phone_fast("(201) 555-0123", "US") == "+12015550123"
    assert _normalise_phone_fast("030/123456", "DE") == "+4930123456"


@pytest.mark.parametrize(
    ("value", "region"),
    [
        ("0912 345 678 ext 12", "VN"),  # extension
        ("Tel 0912345678", "VN"),  # letters
        ("+1 201 555 0123", "VN"),  # another country code
        ("84912345678", "VN"),  # country code without +
        ("0084912345678", "VN"),  # international prefix
        ("٠٩١٢٣٤٥٦٧٨", "VN"),  # non-ASCII digits
        ("0912 345 678", "GG"),  # a region that shares its country code, not the main one
        ("0912 345 678", "ZZ"),  # no such region
        ("0912345", "VN"),  # invalid: only the full path says why
    ],
)
def test_the_fast_path_leaves_anything_unusual_to_phonenumbers(value, region):
    assert _normalise_phone_fast(value, region) is None


def test_plans_exist_only_for_regions_whose_validity_they_can_decide():
    assert _phone_plan("VN") is not None
    assert _phone_plan("GB") is not None
    assert _phone_plan("GG") is None  # +44 numbers belong to GB first
    assert _phone_plan("CA") is None  # +1 numbers belong to US first
    assert normalise_phone("01481 256789", "GG") == "+441481256789"


REGIONS = ("VN", "IR", "US", "GB", "DE")


def _example_numbers(region):
    numbers = set()
    for number_type in phonenumbers.PhoneNumberType.values():
        example = phonenumbers.example_number_for_type(region, number_type)
        if example is not None:
            numbers.add(phonenumbers.national_significant_number(example))
    return sorted(numbers)


EXAMPLES = {region: _example_numbers(region) for region in REGIONS}
SEPARATORS = (" ", " ", ".", "-", "/", "(", ")", " - ", "  ")


@st.composite
def written_numbers(draw, region):
    """Digit strings that are often valid numbers of ``region``, written in many ways."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    country_code = str(metadata.country_code)
    prefix = metadata.national_prefix or ""
    idd = metadata.international_prefix if metadata.international_prefix.isdigit() else "00"
    if draw(st.booleans()):
        example = draw(st.sampled_from(EXAMPLES[region]))
        keep = draw(st.integers(0, len(example)))
        tail = draw(st.text("0123456789", max_size=len(example) - keep + 2))
        national = example[:keep] + tail
    else:
        national = draw(st.text("0123456789", max_size=16))
    form = draw(st.sampled_from(["national", "bare", "plus", "plus0", "cc", "idd"]))
    digits = {
        "national": prefix + national,
        "bare": national,
        "plus": f"+{country_code}{national}",
        "plus0": f"+{country_code}{prefix}{national}",
        "cc": country_code + national,
        "idd": idd + country_code + national,
    }[form]
    gaps = draw(st.lists(st.sampled_from(("",) * 4 + SEPARATORS), min_size=len(digits)))
    text = "".join(char + gap for char, gap in zip(digits, gaps, strict=False))
    before = draw(st.sampled_from(["", "", " ", "(", "\t", "tel: ", "+", "0"]))
    after = draw(st.sampled_from(["", "", " ", ")", " ext 12", " x5", "#", "a", "\u00a0", "9"]))
    return before + text + after


def _check_fast_equals_full(value, region):
    """Assert the fast path and normalise_phone agree with phonenumbers; return both results."""
    full = outcome(_normalise_phone_full, value, region)
    fast = _normalise_phone_fast(value, region)
    if fast is not None:
        assert ("ok", fast) == full, value
    assert outcome(normalise_phone, value, region) == full, value
    return fast, full


@pytest.mark.parametrize("region", REGIONS)
def test_fast_path_equals_phonenumbers_on_generated_numbers(region):
    @PROPERTY
    @given(written_numbers(region))
    def check(value):
        _check_fast_equals_full(value, region)

    check()


@pytest.mark.parametrize("region", REGIONS)
def test_fast_path_takes_every_example_number(region):
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    country_code = str(metadata.country_code)
    for national in EXAMPLES[region]:
        for value in (
            f"{metadata.national_prefix}{national}",
            national,
            f"+{country_code} {national}",
        ):
            if value.startswith(country_code):
                continue  # a country code without + is for phonenumbers to judge
            fast, full = _check_fast_equals_full(value, region)
            assert fast is not None or full[0] == "error", value


def test_fast_path_equals_phonenumbers_on_a_sweep_of_vietnamese_numbers():
    rng = random.Random(84)
    valid = 0
    for index in range(20_000):
        first = str(1 + index % 9)
        national = first + "".join(rng.choice("0123456789") for _ in range(8 + index % 2))
        for value in (f"0{national}", f"+84{national}"):
            fast, full = _check_fast_equals_full(value, "VN")
            if full[0] == "ok":
                valid += 1
                assert fast is not None, value
    assert valid > 5_000


# --- normalise_identity ----------------------------------------------------------------------


def test_identity_dispatches_email_and_phone():
    assert normalise_identity("email", " A@Example.com ") == "a@example.com"
    assert normalise_identity("phone", "0912 345 678") == "+84912345678"
    assert normalise_identity("phone", "0912 345 6789", region="IR") == "+989123456789"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0912 345 678", "+84912345678"),
        ("+84912345678", "+84912345678"),
        ("84912345678", "+84912345678"),
        (" 4523019876543210987 ", "4523019876543210987"),
        ("12345", "12345"),
    ],
)
def test_zalo_is_a_phone_number_or_a_numeric_id(value, expected):
    assert normalise_identity("zalo", value) == expected


@pytest.mark.parametrize("value", ["0123", "+84 123", "zalo.me/abc", "12a45", "9" * 33])
def test_zalo_values_that_are_neither(value):
    with pytest.raises(IdentityError, match="neither") as error:
        normalise_identity("zalo", value)
    assert error.value.field == "zalo"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Some.Name", "some.name"),
        ("@Some.Name", "some.name"),
        ("100012345678", "100012345678"),
        ("https://www.facebook.com/Some.Name/", "some.name"),
        ("http://facebook.com/Some.Name", "some.name"),
        ("https://m.facebook.com/some.name?ref=bookmarks#top", "some.name"),
        ("fb.com/some.name", "some.name"),
        ("www.facebook.com/some.name/about", "some.name"),
        ("https://www.facebook.com/profile.php?id=123", "123"),
        ("facebook.com/profile.php?id=123&sk=about", "123"),
        ("profile.php?id=123", "123"),
        ("https://www.facebook.com/people/Some-Name/100012345678/", "100012345678"),
    ],
)
def test_facebook_profiles_reduce_to_a_username_or_id(value, expected):
    assert normalise_identity("facebook", value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "https://www.facebook.com/",
        "facebook.com/profile.php?id=abc",
        "facebook.com/profile.php",
        "https://facebook.com/groups/somegroup",
        "some name",
        "https://example.com/some.name",
    ],
)
def test_facebook_values_that_are_not_profiles(value):
    with pytest.raises(IdentityError) as error:
        normalise_identity("facebook", value)
    assert error.value.field == "facebook"


def test_web_and_external_identities():
    assert normalise_identity("web", "  Admin.User ") == "admin.user"
    assert normalise_identity("web", "x" * 200) == "x" * 200
    assert normalise_identity("external", "  HubSpot-ABC123 ") == "HubSpot-ABC123"
    assert normalise_identity("external", "x" * 100) == "x" * 100
    with pytest.raises(IdentityError, match="200"):
        normalise_identity("web", "x" * 201)
    with pytest.raises(IdentityError, match="100"):
        normalise_identity("external", "x" * 101)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_empty_values_are_refused_on_every_channel(channel, value):
    with pytest.raises(IdentityError, match="empty") as error:
        normalise_identity(channel, value)
    assert error.value.field == channel


def test_unknown_channel_names_itself_and_the_known_ones():
    with pytest.raises(IdentityError) as error:
        normalise_identity("sms", "0912345678")
    assert error.value.field == "sms"
    assert "'sms'" in str(error.value)
    assert all(channel in str(error.value) for channel in CHANNELS)
    assert isinstance(error.value, ValueError)


def test_identity_errors_survive_pickling_for_worker_processes():
    error = pickle.loads(pickle.dumps(IdentityError("phone", "'1' is not a valid phone number")))
    assert (error.field, str(error)) == ("phone", "'1' is not a valid phone number")
