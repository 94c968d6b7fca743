"""The XSS corpus: payloads that call a sentinel when a browser runs them.

Every payload that could run script calls ``__xss(N)`` (``N`` identifies the payload); the
browser tests define ``window.__xss`` before any page script and fail when it is called. Each
payload also contains the text ``xss`` (lower case, so it survives the lower-cased search keys),
which is how the seeding test recognises a column that holds a payload. Template-injection
payloads cannot call anything: they are caught by what they evaluate to (:data:`EVALUATED`).
Formula payloads start with ``= + - @`` for the CSV export check.

The quick profile uses :data:`QUICK` (a dozen payloads, every kind once); the long profile
(``CRM_RELIABILITY_PROFILE=long``) uses :data:`CORPUS`, every payload below.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.profile import pick

#: The text every payload contains; a column holds a payload when its value contains it.
SIGNATURE = "xss"
#: What a template-injection payload turns into when some engine evaluates it.
EVALUATED = ("81xss", "xss81")
#: The first characters a spreadsheet reads as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@")


@dataclass(frozen=True)
class Payload:
    """One payload: ``number`` is what it passes to ``__xss``, ``kind`` what it attacks."""

    number: int
    kind: str
    text: str

    def __len__(self) -> int:
        return len(self.text)


def _p(number: int, kind: str, text: str) -> Payload:
    if SIGNATURE not in text.lower():
        raise ValueError(f"payload {number} lacks the signature {SIGNATURE!r}")
    return Payload(number, kind, text)


# Each kind of the quick corpus once; ordered shortest first within the lengths the narrowest
# columns take (30 characters: an order's channel, a customer's source channel).
QUICK: tuple[Payload, ...] = (
    _p(1, "attribute break-out", '"><img src=x onerror=__xss(1)>'),
    _p(2, "script element", "<script>__xss(2)</script>"),
    _p(3, "SVG onload", "<svg onload=__xss(3)>"),
    _p(4, "javascript: URL", "javascript:__xss(4)//xss"),
    _p(5, "single-quoted attribute", "' autofocus onfocus=__xss(5) x='"),
    _p(6, "template injection", "{{9*9}}xss${9*9}"),
    _p(7, "RTL override and event handler", "\u202e<img src=x onerror=__xss(7)>\u202c"),
    _p(8, "fullwidth brackets (NFKC)", "\uff1cimg src=x onerror=__xss(8)\uff1e"),
    _p(9, "raw-text element escape", "</textarea></title><img src=x onerror=__xss(9)>"),
    _p(10, "script-block escape", "</script><script>__xss(10)</script>"),
    _p(11, "link with javascript: href", '<a href="javascript:__xss(11)">xss</a>'),
    _p(12, "entity double-decoding", "&lt;img src=x onerror=__xss(12)&gt;"),
    _p(13, "formula =", '=HYPERLINK("http://x","xss")'),
    _p(14, "formula +", "+1+cmd|'/C calc'!xss"),
    _p(15, "formula -", "-2+3+cmd|'/C calc'!xss"),
    _p(16, "formula @", "@SUM(1+1)*cmd|'/C calc'!xss"),
)

_MORE: tuple[Payload, ...] = (
    _p(17, "details ontoggle", "<details open ontoggle=__xss(17)>"),
    _p(18, "upper-case tag", "<IMG SRC=x ONERROR=__xss(18)>"),
    _p(19, "iframe javascript: src", "<iframe src=javascript:__xss(19)></iframe>"),
    _p(20, "iframe srcdoc", '<iframe srcdoc="<script>parent.__xss(20)</script>"></iframe>'),
    _p(21, "mutation XSS", "<math><mtext><table><mglyph><style><img src=x onerror=__xss(21)>"),
    _p(22, "entity-encoded scheme", '<a href="jav&#x61;script:__xss(22)">xss</a>'),
    _p(23, "input autofocus", "<input autofocus onfocus=__xss(23)>"),
    _p(24, "video source error", "<video><source onerror=__xss(24)></video>"),
    _p(25, "object data", '<object data="javascript:__xss(25)"></object>'),
    _p(26, "double-quoted attribute", '" autofocus onfocus="__xss(26)" x="'),
    _p(27, "JS string break-out", "';__xss(27);//\";__xss(27);//"),
    _p(28, "style break-out", "</style><svg onload=__xss(28)>"),
    _p(29, "comment break-out", '<!--<img src="--><img src=x onerror=__xss(29)>'),
    _p(30, "meta refresh", '<meta http-equiv="refresh" content="0;url=javascript:__xss(30)">'),
    _p(31, "base href", '<base href="javascript:__xss(31)//">'),
    _p(32, "data: URL", "data:text/html,<script>__xss(32)</script>"),
    _p(33, "encoded tab in scheme", '<a href="java&#9;script:__xss(33)">xss</a>'),
    _p(34, "body onload", "<body onload=__xss(34)>"),
    _p(35, "htmx attribute", '<div hx-on:click="__xss(35)" hx-get="/">xss</div>'),
    _p(36, "zero-width joiner", "<img\u200d src=x onerror=__xss(36)>"),
    _p(37, "Vietnamese and Persian text", "Nguyễn زهرا <svg onload=__xss(37)>"),
    _p(38, "formula DDE", '=DDE("cmd";"/C calc";"xss")'),
    _p(39, "formula @ command", "@cmd|'/C calc'!A0 xss"),
    _p(40, "alert dialog", "<img src=x onerror=alert('xss')>"),
)

CORPUS: tuple[Payload, ...] = QUICK + _MORE
#: The payloads this run stores: the quick corpus, or all of them in the long profile.
ACTIVE: tuple[Payload, ...] = pick(QUICK, CORPUS)
BY_NUMBER = {p.number: p for p in CORPUS}


class Rotation:
    """Hands out payloads in turn, each the next one that fits a field's length."""

    def __init__(self, payloads: tuple[Payload, ...] = ACTIVE, start: int = 0) -> None:
        self.payloads = payloads
        self.position = start

    def next(self, limit: int | None = None, *, suffix: str = "") -> str:
        """The next payload of at most ``limit`` characters, ``suffix`` appended (to make a
        unique value unique)."""
        for _ in range(len(self.payloads)):
            payload = self.payloads[self.position % len(self.payloads)]
            self.position += 1
            text = f"{payload.text}{suffix}"
            if limit is None or len(text) <= limit:
                return text
        raise ValueError(f"no payload fits in {limit} characters")
