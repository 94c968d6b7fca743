"""Reproducible, realistic customer rows for demo data, tests and import benchmarks.

``customer_rows(count, seed)`` yields dicts keyed by ``CSV_COLUMNS``; the same arguments always
give the same rows. The mix follows our users, Vietnamese and Iranian businesses: about 70%
Vietnamese persons, 10% Persian persons written in Persian script, 8% international persons
(English, French, German and romanised Chinese names; some live in Vietnam) and 12% companies
(mostly Vietnamese "Công ty TNHH …" and "Công ty Cổ phần …", a few international and Iranian).

Row number ``n`` (``start``, ``start + 1``, …) makes ``external_ref``, ``email`` and ``phone``
unique: every email contains ``n`` and every phone ends in seven digits that are a bijection of
``n``, so numbers up to 9,999,999 never repeat, also across calls with disjoint ranges. Facebook
handles and Zalo ids are unique the same way, so no two rows share an identity an importer could
merge them on. Phones are valid numbers in the forms people type (``0912 345 678``,
``+84 912 345 678``, ``091.234.5678``); Iranian and foreign ones are always written with their
``+`` country code, because the importer reads numbers without one as Vietnamese.

Everything per row is a lookup in tables built at import time, so ``write_csv`` can produce a
1,000,000-row file in a few seconds.
"""

from __future__ import annotations

import csv
import random
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

CSV_COLUMNS = (
    "external_ref",
    "kind",
    "display_name",
    "given_name",
    "family_name",
    "company",
    "email",
    "phone",
    "zalo",
    "facebook",
    "address",
    "country",
    "language",
    "tags",
    "source_channel",
)

MAX_NUMBER = 9_999_999
"""The highest row number whose phone is still unique (phones carry seven digits of it)."""

# Cumulative shares of the row kinds.
_VN_PERSON = 0.70
_FA_PERSON = 0.80
_INTL_PERSON = 0.88

_COMPANY_MEMORY = 256
"""How many recent company names per language persons may name as their employer."""


def _weighted(*pairs: tuple[str, int]) -> tuple[str, ...]:
    """A tuple in which each value appears ``weight`` times, for uniform picking."""
    return tuple(value for value, weight in pairs for _ in range(weight))


def _ascii(text: str) -> str:
    """Lower-case ASCII letters and digits of ``text``: ``Đặng Thảo`` becomes ``dangthao``."""
    text = text.replace("đ", "d").replace("Đ", "D").replace("ß", "ss")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


def _with_ascii(names: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Each name paired with its unaccented ASCII form."""
    return tuple((name, _ascii(name)) for name in names)


# --- Vietnamese people -----------------------------------------------------------------------

_VN_FAMILY = _with_ascii(
    _weighted(
        ("Nguyễn", 30),
        ("Trần", 11),
        ("Lê", 9),
        ("Phạm", 7),
        ("Hoàng", 5),
        ("Huỳnh", 4),
        ("Phan", 4),
        ("Vũ", 4),
        ("Võ", 3),
        ("Đặng", 2),
        ("Bùi", 2),
        ("Đỗ", 2),
        ("Hồ", 2),
        ("Ngô", 2),
        ("Dương", 1),
        ("Lý", 1),
        ("Trương", 1),
        ("Đinh", 1),
        ("Đoàn", 1),
        ("Lâm", 1),
        ("Mai", 1),
        ("Tô", 1),
        ("Lương", 1),
    )
)
_VN_MIDDLE = (
    _with_ascii(
        _weighted(
            ("Văn", 6),
            ("Hữu", 2),
            ("Đức", 2),
            ("Minh", 2),
            ("Quốc", 1),
            ("Thanh", 1),
            ("Công", 1),
            ("Xuân", 1),
            ("Gia", 1),
            ("Đình", 1),
            ("Quang", 1),
        )
    ),
    _with_ascii(
        _weighted(
            ("Thị", 6),
            ("Ngọc", 2),
            ("Thanh", 1),
            ("Thu", 1),
            ("Minh", 1),
            ("Phương", 1),
            ("Bảo", 1),
            ("Kim", 1),
            ("Mỹ", 1),
            ("Hồng", 1),
            ("Khánh", 1),
            ("Thùy", 1),
        )
    ),
)
_VN_GIVEN = (
    _with_ascii(
        (
            "Đức", "Tuấn", "Hải", "Quang", "Dũng", "Hùng", "Nam", "Long", "Phúc", "Khoa",
            "Huy", "Thắng", "Sơn", "Trung", "Hiếu", "Bình", "Cường", "Tâm", "Việt", "Khang",
            "Bảo", "Kiên", "Tài", "Lộc", "Thịnh", "Vinh", "Toàn", "Đạt",
        )
    ),
    _with_ascii(
        (
            "Hương", "Lan", "Phương", "Thảo", "Linh", "Trang", "Hà", "Mai", "Anh", "Hằng",
            "Nhung", "Vy", "Yến", "Loan", "Hạnh", "Thủy", "Quỳnh", "Nhi", "Hiền", "Diệp",
            "Oanh", "Châu", "Tú", "My", "Giang", "Ly",
        )
    ),
)  # fmt: skip

# --- Persian people (script, transliteration) -----------------------------------------------

_FA_GIVEN = (
    ("محمد", "mohammad"),
    ("علی", "ali"),
    ("حسین", "hossein"),
    ("رضا", "reza"),
    ("مهدی", "mahdi"),
    ("امیر", "amir"),
    ("سعید", "saeed"),
    ("حمید", "hamid"),
    ("مجید", "majid"),
    ("فرهاد", "farhad"),
    ("کامران", "kamran"),
    ("بهرام", "bahram"),
    ("زهرا", "zahra"),
    ("فاطمه", "fatemeh"),
    ("مریم", "maryam"),
    ("سارا", "sara"),
    ("نرگس", "narges"),
    ("لیلا", "leila"),
    ("نازنین", "nazanin"),
    ("شیما", "shima"),
    ("مهسا", "mahsa"),
    ("الهام", "elham"),
    ("پریسا", "parisa"),
    ("نیلوفر", "niloofar"),
)
_FA_FAMILY = (
    ("احمدی", "ahmadi"),
    ("محمدی", "mohammadi"),
    ("حسینی", "hosseini"),
    ("رضایی", "rezaei"),
    ("کریمی", "karimi"),
    ("موسوی", "mousavi"),
    ("جعفری", "jafari"),
    ("صادقی", "sadeghi"),
    ("هاشمی", "hashemi"),
    ("قاسمی", "ghasemi"),
    ("رحیمی", "rahimi"),
    ("نوری", "nouri"),
    ("کاظمی", "kazemi"),
    ("عباسی", "abbasi"),
    ("اکبری", "akbari"),
    ("طاهری", "taheri"),
    ("شریفی", "sharifi"),
    ("یزدانی", "yazdani"),
)

# --- International people: (given names, family names, countries, family name first) --------

_INTL_ORIGINS = (
    (
        ("James", "Emily", "Michael", "Sarah", "David", "Olivia", "Daniel", "Laura", "Thomas",
         "Jessica", "Andrew", "Hannah"),
        ("Smith", "Johnson", "Brown", "Taylor", "Wilson", "Clarke", "Walker", "Harris",
         "Mitchell", "Cooper"),
        ("US", "US", "GB"),
        False,
    ),
    (
        ("Pierre", "Camille", "Julien", "Léa", "Nicolas", "Chloé", "Mathieu", "Élodie"),
        ("Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Laurent", "Girard", "Rousseau"),
        ("FR",),
        False,
    ),
    (
        ("Lukas", "Anna", "Jonas", "Sophie", "Felix", "Katrin", "Jürgen", "Lena"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Wagner", "Groß"),
        ("DE",),
        False,
    ),
    (
        ("Wei", "Fang", "Jing", "Lei", "Min", "Hao", "Xiaoming", "Yuting", "Jiahui", "Zihan"),
        ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu"),
        ("CN",),
        True,
    ),
)  # fmt: skip
_INTL_PEOPLE = tuple(
    (_with_ascii(given), _with_ascii(family), countries, family_first)
    for given, family, countries, family_first in _INTL_ORIGINS
)
_INTL_IN_VIETNAM = 0.3
"""Share of international persons who live in Vietnam (Vietnamese address and phone)."""

# --- Companies --------------------------------------------------------------------------------

_VN_COMPANY_FORMS = _weighted(
    ("Công ty TNHH", 10),
    ("Công ty Cổ phần", 6),
    ("Công ty TNHH MTV", 3),
    ("Doanh nghiệp Tư nhân", 1),
)
_VN_COMPANY_TRADES = (
    "Thương mại",
    "Dịch vụ",
    "Thương mại Dịch vụ",
    "Sản xuất",
    "Xây dựng",
    "Công nghệ",
    "Thực phẩm",
    "Vận tải",
    "Du lịch",
    "Đầu tư",
    "Xuất nhập khẩu",
    "Nội thất",
    "Dược phẩm",
    "May mặc",
)
_VN_COMPANY_BRANDS = _with_ascii(
    (
        "Minh Phát", "Hòa Bình", "An Khang", "Phú Thịnh", "Thành Công", "Hưng Thịnh", "Sao Mai",
        "Việt Tiến", "Đại Dương", "Hoàng Gia", "Tân Phú", "Kim Long", "Bình Minh", "Phương Nam",
        "Trường An", "Nam Việt", "Thiên Ân", "Phúc Lộc", "Đông Á", "Hồng Hà", "Tràng An",
        "Lạc Hồng", "Sông Hàn", "Mekong Xanh",
    )
)  # fmt: skip
_VN_COMPANY_PLACES = _weighted(
    ("", 12), (" Sài Gòn", 2), (" Hà Nội", 2), (" Việt Nam", 2), (" Miền Trung", 1)
)
_VN_COMPANY_TLDS = _weighted((".vn", 4), (".com.vn", 5), (".com", 3))

_FA_COMPANY_TRADES = ("بازرگانی", "تولیدی", "فنی و مهندسی", "پخش", "صنایع غذایی", "نرم‌افزاری")
_FA_COMPANY_BRANDS = (
    ("آریا", "arya"),
    ("پارس", "pars"),
    ("سپهر", "sepehr"),
    ("البرز", "alborz"),
    ("کاوه", "kaveh"),
    ("نگین", "negin"),
    ("آفتاب", "aftab"),
    ("مهر", "mehr"),
    ("دماوند", "damavand"),
    ("زاگرس", "zagros"),
)
_FA_COMPANY_SUFFIXES = _weighted(("", 3), (" (سهامی خاص)", 2), (" (مسئولیت محدود)", 1))

_INTL_COMPANY_BRANDS = _with_ascii(
    ("Harbor Lane", "Blue Orchid", "Kestrel", "Silver Fern", "Copperleaf", "Lotus Bridge",
     "Evening Star", "Granite Peak", "Tidewater", "Amberline")
)  # fmt: skip
_INTL_COMPANY_TRADES = ("Trading", "Logistics", "Foods", "Textiles", "Software", "Imports")
_CN_COMPANY_BRANDS = _with_ascii(("Huaxin", "Jinlong", "Tianrui", "Mingyang", "Xinhe", "Haitong"))
_CN_COMPANY_CITIES = ("Shenzhen", "Guangzhou", "Shanghai", "Ningbo", "Xiamen")
# (legal form after the name, country, domain ending)
_INTL_COMPANY_FORMS = (
    ("Ltd", "GB", ".co.uk"),
    ("GmbH", "DE", ".de"),
    ("Inc.", "US", ".com"),
    ("SAS", "FR", ".fr"),
    ("Co., Ltd.", "CN", ".com.cn"),
)

# --- Vietnamese addresses --------------------------------------------------------------------

# (city as written, weight, house number style, landline area code or "", districts with wards,
# streets)
_VN_CITIES = (
    (
        "TP. Hồ Chí Minh",
        36,
        "slash",
        "028",
        (
            ("Quận 1", ("Bến Nghé", "Bến Thành", "Đa Kao", "Tân Định", "Cầu Ông Lãnh")),
            ("Quận 3", ("Võ Thị Sáu", "Phường 4", "Phường 9", "Phường 14")),
            ("Quận 5", ("Phường 2", "Phường 7", "Phường 11")),
            ("Quận 7", ("Tân Phong", "Tân Phú", "Tân Hưng", "Phú Mỹ")),
            ("Quận Bình Thạnh", ("Phường 15", "Phường 22", "Phường 25")),
            ("Quận Phú Nhuận", ("Phường 7", "Phường 9", "Phường 10")),
            ("TP. Thủ Đức", ("Thảo Điền", "An Phú", "Linh Trung", "Hiệp Phú")),
        ),
        (
            "Lê Lợi", "Nguyễn Huệ", "Hai Bà Trưng", "Pasteur", "Điện Biên Phủ",
            "Cách Mạng Tháng Tám", "Nguyễn Thị Minh Khai", "Võ Văn Tần", "Lý Tự Trọng",
            "Nguyễn Trãi", "Trần Hưng Đạo", "Phan Xích Long", "Nguyễn Văn Linh", "Xa Lộ Hà Nội",
        ),
    ),
    (
        "Hà Nội",
        30,
        "lane",
        "024",
        (
            ("Quận Hoàn Kiếm", ("Hàng Bạc", "Hàng Trống", "Tràng Tiền", "Lý Thái Tổ")),
            ("Quận Ba Đình", ("Điện Biên", "Kim Mã", "Ngọc Hà", "Liễu Giai")),
            ("Quận Đống Đa", ("Láng Hạ", "Văn Miếu", "Ô Chợ Dừa", "Trung Liệt")),
            ("Quận Cầu Giấy", ("Dịch Vọng", "Nghĩa Đô", "Quan Hoa", "Yên Hòa")),
            ("Quận Hai Bà Trưng", ("Bạch Đằng", "Lê Đại Hành", "Bách Khoa")),
            ("Quận Tây Hồ", ("Quảng An", "Xuân La", "Nhật Tân")),
        ),
        (
            "Phố Huế", "Tràng Tiền", "Hàng Bài", "Đinh Tiên Hoàng", "Kim Mã", "Láng Hạ",
            "Xuân Thủy", "Cầu Giấy", "Trần Duy Hưng", "Bà Triệu", "Lạc Long Quân", "Giải Phóng",
            "Nguyễn Chí Thanh", "Thái Hà",
        ),
    ),
    (
        "Đà Nẵng",
        12,
        "plain",
        "",
        (
            ("Quận Hải Châu", ("Thạch Thang", "Hải Châu 1", "Phước Ninh", "Bình Hiên")),
            ("Quận Sơn Trà", ("An Hải Bắc", "Phước Mỹ", "Mân Thái")),
            ("Quận Thanh Khê", ("Thạc Gián", "Chính Gián", "Vĩnh Trung")),
            ("Quận Ngũ Hành Sơn", ("Mỹ An", "Khuê Mỹ")),
        ),
        (
            "Bạch Đằng", "Trần Phú", "Lê Duẩn", "Nguyễn Văn Linh", "Võ Nguyên Giáp", "Hùng Vương",
            "Ông Ích Khiêm", "Phan Châu Trinh",
        ),
    ),
    (
        "Hải Phòng",
        11,
        "plain",
        "",
        (
            ("Quận Hồng Bàng", ("Hoàng Văn Thụ", "Minh Khai", "Quang Trung")),
            ("Quận Lê Chân", ("An Biên", "Dư Hàng", "Trại Cau")),
            ("Quận Ngô Quyền", ("Máy Tơ", "Lạch Tray", "Đằng Giang")),
        ),
        ("Điện Biên Phủ", "Lạch Tray", "Trần Phú", "Tô Hiệu", "Lê Lợi", "Cầu Đất", "Văn Cao"),
    ),
    (
        "Cần Thơ",
        11,
        "plain",
        "",
        (
            ("Quận Ninh Kiều", ("Tân An", "An Hòa", "Xuân Khánh", "An Cư", "Hưng Lợi")),
            ("Quận Bình Thủy", ("Bình Thủy", "An Thới")),
            ("Quận Cái Răng", ("Lê Bình", "Hưng Phú")),
        ),
        (
            "Hòa Bình", "Nguyễn Trãi", "Đường 30 Tháng 4", "Mậu Thân", "Trần Hưng Đạo",
            "Đường 3 Tháng 2", "Nguyễn Văn Cừ",
        ),
    ),
)  # fmt: skip


def _ward(name: str) -> str:
    """``Phường Bến Nghé`` for ``Bến Nghé``; numbered wards already carry the word."""
    return name if name.startswith("Phường") else f"Phường {name}"


# Per city: (house number style, landline area code, ", ward, district, city" tails, streets).
_VN_PLACES = tuple(
    (
        style,
        area,
        tuple(
            f", {_ward(ward)}, {district}, {city}"
            for district, wards in districts
            for ward in wards
        ),
        streets,
    )
    for city, _weight, style, area, districts, streets in _VN_CITIES
)
_VN_PLACE_PICK = tuple(
    index for index, city in enumerate(_VN_CITIES) for _ in range(city[1])
)  # city indices, repeated by weight

# --- Iranian addresses -----------------------------------------------------------------------

_FA_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
_FA_PLACES = tuple(
    (city, streets)
    for city, streets in (
        ("تهران", ("خیابان ولیعصر", "خیابان انقلاب", "خیابان آزادی", "خیابان شریعتی",
                   "خیابان مطهری", "بلوار کشاورز")),
        ("مشهد", ("بلوار وکیل‌آباد", "خیابان امام رضا", "بلوار سجاد", "خیابان احمدآباد")),
        ("اصفهان", ("خیابان چهارباغ عباسی", "خیابان نظر", "خیابان هزارجریب", "خیابان توحید")),
        ("شیراز", ("خیابان زند", "بلوار چمران", "خیابان ملاصدرا", "خیابان قصرالدشت")),
        ("تبریز", ("خیابان امام", "خیابان ولیعصر", "خیابان آزادی", "خیابان ارتش")),
        ("کرج", ("بلوار جمهوری", "خیابان بهشتی", "بلوار موذن")),
    )
)  # fmt: skip
_FA_PLACE_PICK = (0, 0, 0, 0, 1, 1, 2, 2, 3, 4, 5)
_FA_ALLEYS = ("بهار", "لاله", "نسترن", "یاس", "ششم", "دوازدهم", "شهید رجایی")

# --- Foreign addresses and phones ------------------------------------------------------------

# US cities by the first of the seven phone digits, so the area code matches the city and the
# remaining six digits keep phones unique.
_US_CITIES = (
    ("New York", "NY", "100", "212"),
    ("San Francisco", "CA", "941", "415"),
    ("Chicago", "IL", "606", "312"),
    ("Los Angeles", "CA", "900", "213"),
    ("Seattle", "WA", "981", "206"),
    ("Boston", "MA", "021", "617"),
    ("Houston", "TX", "770", "713"),
    ("Miami", "FL", "331", "305"),
    ("Atlanta", "GA", "303", "404"),
    ("Denver", "CO", "802", "303"),
)
_US_STREETS = ("Oak Street", "Maple Avenue", "Main Street", "Park Avenue", "Cedar Lane",
               "Lincoln Boulevard", "Washington Street", "Elm Drive")  # fmt: skip
_GB_CITIES = (
    ("London", ("EC1A", "SW1A", "W1D", "N1", "SE1", "E14")),
    ("Manchester", ("M1", "M4", "M15")),
    ("Birmingham", ("B1", "B15")),
    ("Edinburgh", ("EH1", "EH3")),
    ("Bristol", ("BS1", "BS8")),
)
_GB_STREETS = ("High Street", "Church Road", "Station Road", "Victoria Road", "Mill Lane",
               "King Street", "Queen's Road")  # fmt: skip
_GB_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_DE_CITIES = (("Berlin", "10"), ("München", "80"), ("Hamburg", "20"), ("Köln", "50"),
              ("Frankfurt am Main", "60"), ("Leipzig", "04"))  # fmt: skip
_DE_STREETS = ("Hauptstraße", "Bahnhofstraße", "Gartenstraße", "Schillerstraße",
               "Goethestraße", "Lindenallee", "Bergstraße")  # fmt: skip
_FR_CITIES = (("Paris", "750"), ("Lyon", "6900"), ("Marseille", "130"), ("Toulouse", "3100"),
              ("Bordeaux", "3300"), ("Lille", "5900"))  # fmt: skip
_FR_STREETS = ("rue de la République", "avenue Victor Hugo", "boulevard Voltaire",
               "rue Nationale", "rue du Commerce", "avenue Jean Jaurès")  # fmt: skip
_CN_CITIES = (
    ("Shanghai", (("Huangpu District", "200001"), ("Xuhui District", "200030"),
                  ("Pudong New Area", "200120"))),
    ("Beijing", (("Chaoyang District", "100020"), ("Haidian District", "100080"),
                 ("Dongcheng District", "100010"))),
    ("Guangzhou", (("Tianhe District", "510620"), ("Yuexiu District", "510030"))),
    ("Shenzhen", (("Nanshan District", "518052"), ("Futian District", "518048"))),
)  # fmt: skip
_CN_STREETS = ("Nanjing Road", "Huaihai Road", "Zhongshan Road", "Renmin Road", "Jiefang Road",
               "Jianguo Road")  # fmt: skip

_VN_MOBILE_PREFIXES = (
    "032", "033", "034", "035", "036", "037", "038", "039", "070", "076", "077", "078", "079",
    "081", "082", "083", "084", "085", "086", "088", "089", "090", "091", "093", "094", "096",
    "097", "098", "099",
)  # fmt: skip
# 089 and 099 are only allocated in part (0896-0899, 0990-0991 and 0993-0999), so the prefix is
# picked among those valid before the first of the seven unique digits.
_VN_MOBILE_BY_DIGIT = tuple(
    tuple(
        prefix
        for prefix in _VN_MOBILE_PREFIXES
        if not ((prefix == "089" and digit < 6) or (prefix == "099" and digit == 2))
    )
    for digit in range(10)
)
_IR_MOBILE_PREFIXES = (
    "901", "902", "903", "905", "910", "911", "912", "913", "914", "915", "916", "917", "918",
    "919", "930", "931", "932", "933", "934", "935", "936", "937", "938", "939",
)  # fmt: skip
# Mobile blocks after which any seven digits make a valid number.
_GB_MOBILE_BLOCKS = ("712", "734", "740", "747", "751", "757", "773", "777", "781", "786", "795")
_FR_MOBILE_BLOCKS = ("60", "61", "62", "64", "65", "66", "67", "68", "73", "75", "76", "77", "78")
_DE_MOBILE_BLOCKS = ("160", "162", "170", "171", "172", "173", "175", "176", "177", "178")
_CN_MOBILE_BLOCKS = ("1380", "1391", "1502", "1861", "1590", "1771", "1356")

# --- Contact details --------------------------------------------------------------------------

_VN_MAIL = _weighted(
    ("gmail.com", 50),
    ("yahoo.com.vn", 10),
    ("yahoo.com", 4),
    ("outlook.com", 8),
    ("hotmail.com", 5),
    ("fpt.vn", 4),
    ("vnn.vn", 3),
    ("icloud.com", 3),
)
_FA_MAIL = _weighted(("gmail.com", 12), ("yahoo.com", 5), ("outlook.com", 2), ("chmail.ir", 1))
_INTL_MAIL = {
    "US": ("gmail.com", "gmail.com", "outlook.com", "yahoo.com", "icloud.com", "hotmail.com"),
    "GB": ("gmail.com", "gmail.com", "outlook.com", "hotmail.co.uk", "btinternet.com"),
    "DE": ("gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.de"),
    "FR": ("gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr"),
    "CN": ("qq.com", "qq.com", "163.com", "126.com", "gmail.com", "sina.com"),
    "VN": ("gmail.com", "gmail.com", "outlook.com", "icloud.com"),
}
_COMPANY_MAILBOXES = ("info", "sales", "contact", "lienhe", "ketoan", "kinhdoanh", "admin")
_INTL_MAILBOXES = ("info", "sales", "contact", "orders", "office")

_TAGS = ("vip", "wholesale", "retail", "newsletter", "event-2026", "zalo-oa", "loyalty", "b2b")
_TAG_SETS = tuple(
    tuple(
        ";".join(_TAGS[i] for i in range(len(_TAGS)) if mask >> i & 1)
        for mask in range(1 << len(_TAGS))
        if mask.bit_count() == size
    )
    for size in range(4)
)  # by size: ("",), then the 8 single tags, 28 pairs, 56 triples

_SOURCES_VN = _weighted(
    ("shop", 20),
    ("zalo", 20),
    ("facebook", 18),
    ("phone", 10),
    ("referral", 10),
    ("web", 9),
    ("event", 7),
    ("email", 6),
)
_SOURCES_FA = _weighted(
    ("shop", 25), ("phone", 25), ("referral", 20), ("web", 15), ("email", 6), ("event", 5),
    ("facebook", 4),
)  # fmt: skip
_SOURCES_INTL = _weighted(
    ("web", 30), ("email", 25), ("referral", 15), ("event", 15), ("facebook", 10), ("shop", 5)
)
_SOURCES_COMPANY = _weighted(
    ("referral", 20), ("email", 20), ("event", 15), ("web", 15), ("phone", 15), ("zalo", 10),
    ("shop", 5),
)  # fmt: skip

# Shares of rows with each detail present.
_EMAIL_SHARE = 0.85
_PHONE_SHARE = 0.80
_ZALO_SHARE = 0.20
_FACEBOOK_SHARE = 0.15
_COMPANY_SHARE = 0.30
_ADDRESS_SHARE = 0.70


def _phone_digits(number: int) -> str:
    """Seven digits that are a bijection of ``number`` modulo 10,000,000, so they never repeat.

    Two affine maps modulo 10**7 (multipliers prime to 10) around a reversal of the digits, so
    neighbouring numbers give unrelated-looking digits.
    """
    mixed = f"{(number * 7_654_321 + 1_234_567) % 10_000_000:07d}"[::-1]
    return f"{(int(mixed) * 3_141_593 + 2_718_281) % 10_000_000:07d}"


class _Generator:
    """The row stream of one seed; keeps recent company names for persons to work at."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.rand: Callable[[], float] = rng.random
        self.bits: Callable[[int], int] = rng.getrandbits
        self.companies: dict[str, list[tuple[str, str]]] = {"vi": [], "fa": [], "en": []}

    # -- small pieces --------------------------------------------------------------------------

    def tags(self) -> str:
        """Zero to three tags joined by ``;`` (about 40% none, 35% one, 18% two, 7% three)."""
        r = self.rand()
        if r < 0.40:
            return ""
        sets = _TAG_SETS[1] if r < 0.75 else _TAG_SETS[2] if r < 0.93 else _TAG_SETS[3]
        return sets[int(self.rand() * len(sets))]

    def zalo(self, digits: str) -> str:
        """An 18-digit numeric Zalo id: 11 random digits, then the row's 7 unique ones."""
        return f"{self.bits(35) | 1 << 35}{digits}"

    def vn_phone(self, digits: str, area: str = "") -> str:
        """A Vietnamese mobile (or, with ``area``, a landline) in one of the usual forms."""
        rand = self.rand
        if area:
            lead = "3" if rand() < 0.7 else "6"
            return f"{area} {lead}{digits[:3]} {digits[3:]}"
        prefixes = _VN_MOBILE_BY_DIGIT[ord(digits[0]) - 48]
        prefix = prefixes[int(rand() * len(prefixes))]
        form = rand()
        if form < 0.35:
            return f"{prefix}{digits[0]} {digits[1:4]} {digits[4:]}"
        if form < 0.60:
            return prefix + digits
        if form < 0.80:
            return f"+84 {prefix[1:]}{digits[0]} {digits[1:4]} {digits[4:]}"
        if form < 0.92:
            return f"{prefix}.{digits[:3]}.{digits[3:]}"
        return f"+84{prefix[1:]}{digits}"

    def ir_phone(self, digits: str) -> str:
        """An Iranian mobile, always with +98 since the importer defaults to Vietnam."""
        prefix = _IR_MOBILE_PREFIXES[int(self.rand() * len(_IR_MOBILE_PREFIXES))]
        form = self.rand()
        if form < 0.5:
            return f"+98 {prefix} {digits[:3]} {digits[3:]}"
        if form < 0.8:
            return f"+98{prefix}{digits}"
        return f"+98 {prefix} {digits}"

    def foreign_phone(self, country: str, digits: str) -> str:
        """A mobile of ``country`` (US, GB, DE, FR or CN) in international form."""
        rand = self.rand
        if country == "US":
            area = _US_CITIES[int(digits[0])][3]
            return f"+1 {area}-{int(rand() * 8) + 2}{digits[1:3]}-{digits[3:]}"
        if country == "GB":
            block = _GB_MOBILE_BLOCKS[int(rand() * len(_GB_MOBILE_BLOCKS))]
            return f"+44 {block}{digits[0]} {digits[1:]}"
        if country == "DE":
            block = _DE_MOBILE_BLOCKS[int(rand() * len(_DE_MOBILE_BLOCKS))]
            return f"+49 {block} {digits}"
        if country == "FR":
            block = _FR_MOBILE_BLOCKS[int(rand() * len(_FR_MOBILE_BLOCKS))]
            return f"+33 {block[0]} {block[1]}{digits[0]} {digits[1:3]} {digits[3:5]} {digits[5:]}"
        block = _CN_MOBILE_BLOCKS[int(rand() * len(_CN_MOBILE_BLOCKS))]
        return f"+86 {block[:3]} {block[3]}{digits[:3]} {digits[3:]}"

    def vn_address(self) -> tuple[str, str]:
        """A Vietnamese street address and the city's landline area code ("" if we use none)."""
        rand = self.rand
        style, area, tails, streets = _VN_PLACES[_VN_PLACE_PICK[int(rand() * len(_VN_PLACE_PICK))]]
        street = streets[int(rand() * len(streets))]
        house = int(rand() * 250) + 1
        shape = rand()
        if style == "lane":
            if shape < 0.4:
                lead = f"Số {house} ngõ {int(rand() * 200) + 1} {street}"
            else:
                lead = f"Số {house} {street}"
        elif style == "slash" and shape < 0.3:
            lead = f"{house}/{int(rand() * 40) + 1} {street}"
        else:
            lead = f"{house} {street}"
        return lead + tails[int(rand() * len(tails))], area

    def ir_address(self) -> str:
        """An Iranian address in Persian with Persian digits."""
        rand = self.rand
        city, streets = _FA_PLACES[_FA_PLACE_PICK[int(rand() * len(_FA_PLACE_PICK))]]
        parts = [city, streets[int(rand() * len(streets))]]
        if rand() < 0.4:
            parts.append("کوچه " + _FA_ALLEYS[int(rand() * len(_FA_ALLEYS))])
        parts.append("پلاک " + str(int(rand() * 300) + 1).translate(_FA_DIGITS))
        if rand() < 0.3:
            parts.append("واحد " + str(int(rand() * 20) + 1).translate(_FA_DIGITS))
        return "، ".join(parts)

    def foreign_address(self, country: str, digits: str) -> str:
        """A street address in ``country`` (US, GB, DE, FR or CN)."""
        rand = self.rand
        house = int(rand() * 400) + 1
        if country == "US":
            city, state, zip3, _area = _US_CITIES[int(digits[0])]
            street = _US_STREETS[int(rand() * len(_US_STREETS))]
            return f"{house} {street}, {city}, {state} {zip3}{int(rand() * 100):02d}"
        if country == "GB":
            city, districts = _GB_CITIES[int(rand() * len(_GB_CITIES))]
            street = _GB_STREETS[int(rand() * len(_GB_STREETS))]
            letters = _GB_LETTERS[int(rand() * 20)] + _GB_LETTERS[int(rand() * 20)]
            district = districts[int(rand() * len(districts))]
            return f"{house} {street}, {city} {district} {int(rand() * 9) + 1}{letters}"
        if country == "DE":
            city, plz = _DE_CITIES[int(rand() * len(_DE_CITIES))]
            street = _DE_STREETS[int(rand() * len(_DE_STREETS))]
            return f"{street} {house % 120 + 1}, {plz}{int(rand() * 900) + 100} {city}"
        if country == "FR":
            city, cp = _FR_CITIES[int(rand() * len(_FR_CITIES))]
            street = _FR_STREETS[int(rand() * len(_FR_STREETS))]
            code = (
                f"{cp}{int(rand() * 20) + 1:02d}" if len(cp) == 3 else f"{cp}{int(rand() * 9) + 1}"
            )
            return f"{house % 150 + 1} {street}, {code} {city}"
        city, districts = _CN_CITIES[int(rand() * len(_CN_CITIES))]
        district, postcode = districts[int(rand() * len(districts))]
        street = _CN_STREETS[int(rand() * len(_CN_STREETS))]
        return f"No. {house} {street}, {district}, {city} {postcode}"

    def facebook(self, number: int, *parts: str) -> str:
        """A profile name such as ``nguyen.van.duc.123``; ``number`` makes it unique."""
        r = self.rand()
        if r < 0.6:
            return f"{'.'.join(parts)}.{number}"
        if r < 0.8:
            return f"{'.'.join(reversed(parts))}{number}"
        return "".join(parts) + str(number)

    def employer(self, language: str) -> tuple[str, str]:
        """A company a person works at: one generated earlier, or a new plausible one."""
        known = self.companies[language]
        if known and self.rand() < 0.7:
            return known[int(self.rand() * len(known))]
        if language == "vi":
            return self.vn_company_name()
        if language == "fa":
            return self.fa_company_name()
        return self.intl_company_name()[:2]

    def remember(self, language: str, number: int, company: tuple[str, str]) -> None:
        """Keep ``company`` among the recent ones persons may name."""
        known = self.companies[language]
        if len(known) < _COMPANY_MEMORY:
            known.append(company)
        else:
            known[number % _COMPANY_MEMORY] = company

    def vn_company_name(self) -> tuple[str, str]:
        """A Vietnamese company name and its web domain."""
        rand = self.rand
        brand, slug = _VN_COMPANY_BRANDS[int(rand() * len(_VN_COMPANY_BRANDS))]
        form = _VN_COMPANY_FORMS[int(rand() * len(_VN_COMPANY_FORMS))]
        trade = _VN_COMPANY_TRADES[int(rand() * len(_VN_COMPANY_TRADES))]
        place = _VN_COMPANY_PLACES[int(rand() * len(_VN_COMPANY_PLACES))]
        domain = slug + _VN_COMPANY_TLDS[int(rand() * len(_VN_COMPANY_TLDS))]
        return f"{form} {trade} {brand}{place}", domain

    def fa_company_name(self) -> tuple[str, str]:
        """An Iranian company name in Persian and its web domain."""
        rand = self.rand
        brand, slug = _FA_COMPANY_BRANDS[int(rand() * len(_FA_COMPANY_BRANDS))]
        trade = _FA_COMPANY_TRADES[int(rand() * len(_FA_COMPANY_TRADES))]
        suffix = _FA_COMPANY_SUFFIXES[int(rand() * len(_FA_COMPANY_SUFFIXES))]
        domain = slug + ("co.ir" if rand() < 0.5 else "group.com")
        return f"شرکت {trade} {brand}{suffix}", domain

    def intl_company_name(self) -> tuple[str, str, str]:
        """A foreign company name, its web domain and its country."""
        rand = self.rand
        form, country, tld = _INTL_COMPANY_FORMS[int(rand() * len(_INTL_COMPANY_FORMS))]
        trade = _INTL_COMPANY_TRADES[int(rand() * len(_INTL_COMPANY_TRADES))]
        if country == "CN":
            brand, slug = _CN_COMPANY_BRANDS[int(rand() * len(_CN_COMPANY_BRANDS))]
            city = _CN_COMPANY_CITIES[int(rand() * len(_CN_COMPANY_CITIES))]
            return f"{city} {brand} {trade} {form}", slug + tld, country
        brand, slug = _INTL_COMPANY_BRANDS[int(rand() * len(_INTL_COMPANY_BRANDS))]
        return f"{brand} {trade} {form}", slug + tld, country

    # -- rows ----------------------------------------------------------------------------------

    def row(self, number: int) -> tuple[str, ...]:
        """The row for running number ``number``, as values in ``CSV_COLUMNS`` order."""
        r = self.rand()
        if r < _VN_PERSON:
            return self.vn_person(number)
        if r < _FA_PERSON:
            return self.fa_person(number)
        if r < _INTL_PERSON:
            return self.intl_person(number)
        return self.company(number)

    def vn_person(self, number: int) -> tuple[str, ...]:
        """A Vietnamese person: ``Family Middle Given`` with diacritics."""
        rand = self.rand
        female = rand() < 0.5
        family, f = _VN_FAMILY[int(rand() * len(_VN_FAMILY))]
        middles = _VN_MIDDLE[female]
        middle, m = middles[int(rand() * len(middles))]
        givens = _VN_GIVEN[female]
        given, g = givens[int(rand() * len(givens))]
        company = domain = ""
        if rand() < _COMPANY_SHARE:
            company, domain = self.employer("vi")
        email = ""
        if rand() < _EMAIL_SHARE:
            shape = rand()
            if domain and shape < 0.25:
                email = f"{g}.{f}{number}@{domain}"
            else:
                host = _VN_MAIL[int(rand() * len(_VN_MAIL))]
                if shape < 0.35:
                    email = f"{f}{m}{g}{number}@{host}"
                elif shape < 0.55:
                    email = f"{g}{f}{number}@{host}"
                elif shape < 0.70:
                    email = f"{g}.{f}{number}@{host}"
                elif shape < 0.85:
                    email = f"{g}{f[0]}{m[0]}{number}@{host}"
                else:
                    email = f"{f}.{g}.{number}@{host}"
        digits = _phone_digits(number)
        phone = self.vn_phone(digits) if rand() < _PHONE_SHARE else ""
        zalo = self.zalo(digits) if rand() < _ZALO_SHARE else ""
        facebook = self.facebook(number, f, m, g) if rand() < _FACEBOOK_SHARE else ""
        address = self.vn_address()[0] if rand() < _ADDRESS_SHARE else ""
        return (
            f"CUST-{number:07d}",
            "person",
            f"{family} {middle} {given}",
            given,
            family,
            company,
            email,
            phone,
            zalo,
            facebook,
            address,
            "VN",
            "vi",
            self.tags(),
            _SOURCES_VN[int(rand() * len(_SOURCES_VN))],
        )

    def fa_person(self, number: int) -> tuple[str, ...]:
        """A Persian person in Persian script: ``given family``."""
        rand = self.rand
        given, g = _FA_GIVEN[int(rand() * len(_FA_GIVEN))]
        family, f = _FA_FAMILY[int(rand() * len(_FA_FAMILY))]
        company = domain = ""
        if rand() < _COMPANY_SHARE:
            company, domain = self.employer("fa")
        email = ""
        if rand() < _EMAIL_SHARE:
            shape = rand()
            if domain and shape < 0.25:
                email = f"{g[0]}.{f}{number}@{domain}"
            else:
                host = _FA_MAIL[int(rand() * len(_FA_MAIL))]
                if shape < 0.5:
                    email = f"{g}.{f}{number}@{host}"
                elif shape < 0.8:
                    email = f"{g}{f}{number}@{host}"
                else:
                    email = f"{f}.{g}{number}@{host}"
        digits = _phone_digits(number)
        phone = self.ir_phone(digits) if rand() < _PHONE_SHARE else ""
        facebook = self.facebook(number, g, f) if rand() < _FACEBOOK_SHARE else ""
        address = self.ir_address() if rand() < _ADDRESS_SHARE else ""
        return (
            f"CUST-{number:07d}",
            "person",
            f"{given} {family}",
            given,
            family,
            company,
            email,
            phone,
            "",
            facebook,
            address,
            "IR",
            "fa",
            self.tags(),
            _SOURCES_FA[int(rand() * len(_SOURCES_FA))],
        )

    def intl_person(self, number: int) -> tuple[str, ...]:
        """A person with an English, French, German or romanised Chinese name."""
        rand = self.rand
        givens, families, countries, family_first = _INTL_PEOPLE[int(rand() * len(_INTL_PEOPLE))]
        given, g = givens[int(rand() * len(givens))]
        family, f = families[int(rand() * len(families))]
        in_vietnam = rand() < _INTL_IN_VIETNAM
        country = "VN" if in_vietnam else countries[int(rand() * len(countries))]
        company = domain = ""
        if rand() < _COMPANY_SHARE:
            company, domain = self.employer("vi" if in_vietnam else "en")
        email = ""
        if rand() < _EMAIL_SHARE:
            shape = rand()
            if domain and shape < 0.3:
                email = f"{g}.{f}{number}@{domain}"
            else:
                hosts = _INTL_MAIL[country]
                host = hosts[int(rand() * len(hosts))]
                if shape < 0.5:
                    email = f"{g}.{f}{number}@{host}"
                elif shape < 0.75:
                    email = f"{g[0]}{f}{number}@{host}"
                else:
                    email = f"{f}.{g}.{number}@{host}"
        digits = _phone_digits(number)
        phone = ""
        if rand() < _PHONE_SHARE:
            phone = self.vn_phone(digits) if in_vietnam else self.foreign_phone(country, digits)
        facebook = self.facebook(number, g, f) if rand() < _FACEBOOK_SHARE else ""
        address = ""
        if rand() < _ADDRESS_SHARE:
            address = self.vn_address()[0] if in_vietnam else self.foreign_address(country, digits)
        return (
            f"CUST-{number:07d}",
            "person",
            f"{family} {given}" if family_first else f"{given} {family}",
            given,
            family,
            company,
            email,
            phone,
            "",
            facebook,
            address,
            country,
            "en",
            self.tags(),
            _SOURCES_INTL[int(rand() * len(_SOURCES_INTL))],
        )

    def company(self, number: int) -> tuple[str, ...]:
        """A company: 80% Vietnamese, 10% international, 10% Iranian."""
        rand = self.rand
        digits = _phone_digits(number)
        r = rand()
        zalo = ""
        if r < 0.8:
            name, domain = self.vn_company_name()
            language, country = "vi", "VN"
            address, area = self.vn_address()
            phone = self.vn_phone(digits, area if rand() < 0.6 else "")
            boxes = _COMPANY_MAILBOXES
            if rand() < _ZALO_SHARE:
                zalo = self.zalo(digits)
        elif r < 0.9:
            name, domain, country = self.intl_company_name()
            language = "en"
            address = self.foreign_address(country, digits)
            phone = self.foreign_phone(country, digits)
            boxes = _INTL_MAILBOXES
        else:
            name, domain = self.fa_company_name()
            language, country = "fa", "IR"
            address = self.ir_address()
            phone = self.ir_phone(digits)
            boxes = _INTL_MAILBOXES
        self.remember(language, number, (name, domain))
        email = ""
        if rand() < _EMAIL_SHARE:
            box = boxes[int(rand() * len(boxes))]
            email = (
                f"{box}.{number}@{domain}"
                if rand() < 0.8
                else f"{domain.split('.', 1)[0]}{number}@gmail.com"
            )
        if rand() >= _PHONE_SHARE:
            phone = ""
        if rand() >= 0.9:
            address = ""
        facebook = ""
        if rand() < _FACEBOOK_SHARE:
            page = domain.split(".", 1)[0]
            facebook = f"{page}.{number}" if rand() < 0.5 else f"{page}.official{number}"
        return (
            f"CUST-{number:07d}",
            "company",
            name,
            "",
            "",
            "",
            email,
            phone,
            zalo,
            facebook,
            address,
            country,
            language,
            self.tags(),
            _SOURCES_COMPANY[int(rand() * len(_SOURCES_COMPANY))],
        )


def _row_values(count: int, seed: int, start: int) -> Iterator[tuple[str, ...]]:
    """Rows as tuples in ``CSV_COLUMNS`` order; the arguments are checked by the caller."""
    row = _Generator(seed).row
    for number in range(start, start + count):
        yield row(number)


def _check(count: int, start: int) -> None:
    """Refuse counts and starts whose running numbers would not be unique."""
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    if start < 1:
        raise ValueError(f"start must be at least 1, got {start}")
    if start + count - 1 > MAX_NUMBER:
        raise ValueError(
            f"rows {start}..{start + count - 1} go past {MAX_NUMBER:,}; phones would repeat"
        )


def customer_rows(count: int, seed: int = 42, start: int = 1) -> Iterator[dict[str, str]]:
    """Yield ``count`` customer rows numbered from ``start``, the same for the same arguments.

    Each row has exactly the ``CSV_COLUMNS`` keys and only string values (``""`` when empty).
    ``seed`` drives the names, details and mix through ``random.Random(seed)``; ``start`` only
    shifts the running number, which makes ``external_ref``, ``email`` and ``phone`` unique.
    Raises ``ValueError`` for a negative count, a start below 1 or numbers past ``MAX_NUMBER``.
    """
    _check(count, start)
    columns = CSV_COLUMNS
    return (dict(zip(columns, values, strict=True)) for values in _row_values(count, seed, start))


def write_csv(path: str | Path, count: int, seed: int = 42, bom: bool = False) -> int:
    """Write ``count`` rows of ``customer_rows(count, seed)`` to a UTF-8 CSV file at ``path``.

    The header is ``CSV_COLUMNS``; ``bom`` starts the file with a byte order mark, which Excel
    needs to read UTF-8. Rows are streamed, so memory stays flat for any count. Returns ``count``.
    """
    _check(count, 1)
    encoding = "utf-8-sig" if bom else "utf-8"
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(_row_values(count, seed, 1))
    return count
