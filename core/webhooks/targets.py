"""Which URLs webhooks may be sent to: a guard against server-side request forgery (SSRF).

A webhook URL is chosen by an admin, but the request leaves from the CRM's server, inside its
network. :func:`check_target` is run when an endpoint is registered and again before every
delivery. It accepts only ``http`` and ``https`` URLs without user information, refuses host
names written in forms parsers disagree on (decimal, octal, hexadecimal or shortened IPv4,
trailing dots, percent-encoding, zone identifiers), turns international names into their ASCII
form (so ``１２７.０.０.１`` or ``ⓛocalhost`` become what they really are), resolves the name
and refuses it when *any* address it resolves to is not a public one: loopback, private,
shared (carrier-grade NAT), link-local, multicast, unspecified, reserved or documentation
ranges, and IPv6 forms embedding such an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64,
6to4, Teredo).

The delivery then connects to the address checked here (:meth:`Target.pinned`), never
resolving the name again, so a DNS answer changed in between (DNS rebinding) cannot redirect it.

``CRM_WEBHOOKS_ALLOW_PRIVATE=true`` allows loopback, private, shared and reserved addresses
for on-premise installs. Multicast, unspecified and link-local addresses (where cloud metadata
services live) stay refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.webhooks.errors import WebhookError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2000
ALLOW_PRIVATE_HINT = "set CRM_WEBHOOKS_ALLOW_PRIVATE=true for on-premise targets"

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
#: Ranges refused in every case, with what they are.
_ALWAYS_REFUSED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (_V4("0.0.0.0/8"), "an unspecified address"),
    (_V4("169.254.0.0/16"), "a link-local address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("255.255.255.255/32"), "the broadcast address"),
    (_V6("::/128"), "an unspecified address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("ff00::/8"), "a multicast address"),
)
#: Ranges refused unless private targets are allowed.
_NOT_PUBLIC: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
    (_V4("192.0.0.0/24"), "a reserved address"),
    (_V4("192.0.2.0/24"), "a documentation address"),
    (_V4("192.88.99.0/24"), "a reserved address"),
    (_V4("198.18.0.0/15"), "a benchmarking address"),
    (_V4("198.51.100.0/24"), "a documentation address"),
    (_V4("203.0.113.0/24"), "a documentation address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("fc00::/7"), "a private (unique local) address"),
    (_V6("fec0::/10"), "a reserved (site-local) address"),
    (_V6("100::/64"), "a reserved (discard) address"),
    (_V6("2001:db8::/32"), "a documentation address"),
    (_V6("3fff::/20"), "a documentation address"),
    (_V6("2001::/23"), "a reserved address"),
    (_V6("5f00::/16"), "a reserved address"),
)
_MAPPED = _V6("::ffff:0:0/96")
#: SIIT's "IPv4-translated" form (RFC 2765), also carrying an IPv4 address in its last 32 bits.
_TRANSLATED = _V6("::ffff:0:0:0/96")
#: Global unicast: the only IPv6 space handed out for public hosts (the rest is unassigned).
_GLOBAL_UNICAST = _V6("2000::/3")
_COMPATIBLE = _V6("::/96")
_NAT64 = (_V6("64:ff9b::/96"), _V6("64:ff9b:1::/48"))
_SIX_TO_FOUR = _V6("2002::/16")
_TEREDO = _V6("2001::/32")
_LOOPBACK6 = ipaddress.IPv6Address("::1")

_OCTET = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_CANONICAL_V4 = re.compile(rf"^{_OCTET}(\.{_OCTET}){{3}}$")
#: A label an IPv4 parser may read as a number (decimal, octal or hexadecimal).
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_HOST_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
#: What IDNA treats as label separators besides the full stop.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


class TargetError(WebhookError):
    """A webhook URL is refused; ``reason`` says why, the message names the URL too."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"url: {url} {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """A checked URL: its parts, and the addresses it resolved to (all acceptable)."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the name, and the port when it is not the scheme's default."""
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"

    def pinned(self, address: str) -> str:
        """The URL with ``address`` in place of the host name: what the client connects to."""
        literal = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{literal}:{self.port}{self.path}"


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (``getaddrinfo``), in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


def check_url(url: str) -> tuple[str, str, int, str, bool]:
    """Check ``url``'s form: ``(scheme, ASCII host, port, path and query, host is an IP)``.

    Raises :class:`TargetError` for anything but a plain ``http(s)://host[:port]/path`` URL.
    """
    if not url:
        raise TargetError(repr(url), "is empty; give an http:// or https:// URL")
    if len(url) > MAX_URL_LENGTH:
        raise TargetError(url[:80] + "...", f"is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url) or "\\" in url:
        raise TargetError(repr(url), "contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise TargetError(url, f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise TargetError(url, "is not an http:// or https:// URL")
    if "@" in parts.netloc:
        raise TargetError(url, "contains a user name or password, which is not allowed")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise TargetError(url, "has an invalid port") from None
    if port < 1:
        raise TargetError(url, "has an invalid port")
    raw = parts.hostname or ""
    if not raw:
        raise TargetError(url, "has no host")
    bracketed = parts.netloc.split("@")[-1].startswith("[")
    host, is_ip = _ascii_host(url, raw, bracketed)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, path, is_ip


def _ascii_host(url: str, raw: str, bracketed: bool) -> tuple[str, bool]:
    """The host in ASCII and whether it is an IP address; refuses ambiguous spellings."""
    if bracketed:
        if "%" in raw:
            raise TargetError(url, "has an IPv6 zone identifier, which is not allowed")
        try:
            return str(ipaddress.IPv6Address(raw)), True
        except ValueError:
            raise TargetError(url, f"has an invalid IPv6 address [{raw}]") from None
    host = raw
    if not host.isascii():
        host = unicodedata.normalize("NFKC", host).translate(_DOTS).lower()
        if not host.isascii():
            try:
                import idna

                host = idna.encode(host, uts46=True).decode("ascii")
            except (idna.IDNAError, UnicodeError):
                raise TargetError(url, f"has an invalid international host name {raw!r}") from None
    if host.endswith("."):
        raise TargetError(url, "has a host name ending in a dot; write it without the dot")
    if "%" in host:
        raise TargetError(url, "has a percent-encoded host name, which is not allowed")
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        if not _CANONICAL_V4.match(host):
            raise TargetError(
                url,
                f"writes the host {raw!r} as a decimal, octal, hexadecimal or shortened"
                " number; write an IPv4 address as four decimal numbers (such as 192.0.2.1)",
            )
        return host, True
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise TargetError(url, f"has an invalid host name {raw!r}")
    return host, False


def _embedded(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 transition form carries, with the form's name."""
    if address in _MAPPED:
        return "an IPv4-mapped address", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _TRANSLATED:
        return "an IPv4-translated address", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _COMPATIBLE:
        return "an IPv4-compatible address", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if any(address in net for net in _NAT64):
        return "a NAT64 address", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return "a 6to4 address", ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
    if address in _TEREDO:
        return "a Teredo address", ipaddress.IPv4Address(~int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress, allow_private: bool) -> str | None:
    """Why ``address`` may not be a webhook target (``"a loopback address"``), or ``None``."""
    for network, what in _ALWAYS_REFUSED:
        if address.version == network.version and address in network:
            return what
    if isinstance(address, ipaddress.IPv6Address) and address != _LOOPBACK6:
        embedded = _embedded(address)
        if embedded is not None:
            form, inner = embedded
            if address in _COMPATIBLE and not allow_private:
                return f"{form} (deprecated, embedding {inner})"
            why = refusal(inner, allow_private)
            return f"{form} embedding {inner}, {why}" if why else None
    if allow_private:
        return None
    for network, what in _NOT_PUBLIC:
        if address.version == network.version and address in network:
            return what
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
        return "not a global unicast address (outside 2000::/3)"
    if not address.is_global:
        return "not a public address"
    return None


def _hint(address: IPAddress, allow_private: bool) -> str:
    """How to allow ``address``, when the allow-private setting would."""
    if allow_private or refusal(address, allow_private=True) is not None:
        return ""
    return f"; {ALLOW_PRIVATE_HINT}"


def check_target(url: str, allow_private: bool = False) -> Target:
    """Check ``url`` and resolve its host; every address must be acceptable.

    Raises :class:`TargetError` naming the URL and the reason ("resolves to 127.0.0.1, a
    loopback address; set CRM_WEBHOOKS_ALLOW_PRIVATE=true for on-premise targets").
    """
    scheme, host, port, path, is_ip = check_url(url)
    if is_ip:
        addresses = [host]
    else:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise TargetError(url, f"cannot be resolved ({host}: {exc})") from None
        if not addresses:
            raise TargetError(url, f"cannot be resolved ({host}: no address)")
    for text in addresses:
        if "%" in text:  # a scoped (link-local) IPv6 address
            raise TargetError(url, f"resolves to {text}, a link-local address")
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise TargetError(url, f"resolves to {text!r}, which is not an IP address") from None
        why = refusal(address, allow_private)
        if why is not None:
            verb = "is" if is_ip else "resolves to"
            raise TargetError(url, f"{verb} {address}, {why}{_hint(address, allow_private)}")
    return Target(url, scheme, host, port, path, tuple(addresses))
