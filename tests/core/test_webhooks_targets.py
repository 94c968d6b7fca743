"""Which webhook URLs are refused (SSRF): the URL's form, IP literals in every spelling, and
what a name resolves to (with the system's resolver: ``localhost``)."""

from __future__ import annotations

import ipaddress

import pytest

from core.webhooks.errors import WebhookError
from core.webhooks.targets import TargetError, check_target, refusal

HINT = "; set CRM_WEBHOOKS_ALLOW_PRIVATE=true for on-premise targets"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://198.51.100.7/hook", "is not an http:// or https:// URL"),
        ("javascript:alert(1)", "is not an http:// or https:// URL"),
        ("//8.8.8.8/hook", "is not an http:// or https:// URL"),
        ("http://user:secret@8.8.8.8/hook", "contains a user name or password"),
        ("http://user@8.8.8.8/hook", "contains a user name or password"),
        ("http://8.8.8.8\\@127.0.0.1/", "backslashes"),
        ("http://8.8.8.8/ hook", "spaces"),
        ("http://8.8.8.8:99999/", "has an invalid port"),
        ("http:///hook", "has no host"),
        ("http://[::1/", "is not a valid URL"),
        ("http://[fe80::1%25eth0]/", "zone identifier"),
        ("http://%31%32%37.0.0.1/", "percent-encoded"),
        ("http://exa_mple-.com/", "invalid host name"),
        ("", "is empty"),
        ("http://8.8.8.8/" + "x" * 2000, "longer than 2000 characters"),
    ],
)
def test_urls_of_the_wrong_form_are_refused(url, reason):
    with pytest.raises(TargetError) as caught:
        check_target(url, allow_private=True)
    assert reason in caught.value.reason
    assert str(caught.value).startswith("url: ")


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",  # decimal 127.0.0.1
        "0177.0.0.1",  # octal
        "0x7f.0.0.1",  # hexadecimal
        "0x7f000001",
        "127.1",  # shortened
        "127.0.1",
        "017700000001",
        "127.000.000.001",
        "1.2.3.04",
        "8.8.8.8.8",
        "example.0x10",  # a name ending in a number is read as an address by browsers
        "3232235521",  # 192.168.0.1
    ],
)
def test_ipv4_addresses_in_unusual_spellings_are_refused_even_when_allowed(host):
    for allow_private in (False, True):
        with pytest.raises(TargetError, match="four decimal numbers"):
            check_target(f"http://{host}/hook", allow_private)


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("http://127.0.0.1/", "127.0.0.1, a loopback address"),
        ("http://127.255.0.9:8080/", "127.255.0.9, a loopback address"),
        ("http://10.0.0.5/", "10.0.0.5, a private address"),
        ("http://172.16.3.4/", "172.16.3.4, a private address"),
        ("http://192.168.1.1/", "192.168.1.1, a private address"),
        ("http://100.64.0.1/", "100.64.0.1, a shared (carrier-grade NAT) address"),
        ("http://192.0.2.10/", "192.0.2.10, a documentation address"),
        ("http://198.18.0.1/", "198.18.0.1, a benchmarking address"),
        ("http://240.0.0.1/", "240.0.0.1, a reserved address"),
        ("http://192.0.0.8/", "192.0.0.8, a reserved address"),
        ("http://[::1]/", "::1, a loopback address"),
        ("http://[fd00::1]/", "fd00::1, a private (unique local) address"),
        ("http://[fec0::1]/", "fec0::1, a reserved (site-local) address"),
        ("http://[2001:db8::1]/", "2001:db8::1, a documentation address"),
        (
            "http://[::ffff:127.0.0.1]/",
            "::ffff:7f00:1, an IPv4-mapped address embedding 127.0.0.1, a loopback address",
        ),
        (
            "http://[::ffff:10.0.0.1]/",
            "::ffff:a00:1, an IPv4-mapped address embedding 10.0.0.1, a private address",
        ),
        ("http://[::127.0.0.1]/", "::7f00:1, an IPv4-compatible address (deprecated"),
        (
            "http://[64:ff9b::7f00:1]/",
            "64:ff9b::7f00:1, a NAT64 address embedding 127.0.0.1, a loopback address",
        ),
        (
            "http://[64:ff9b:1::a9fe:a9fe]/",
            "64:ff9b:1::a9fe:a9fe, a NAT64 address embedding 169.254.169.254",
        ),
        (
            "http://[2002:c0a8:101::1]/",
            "2002:c0a8:101::1, a 6to4 address embedding 192.168.1.1, a private address",
        ),
        (
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
            "2001:0:4136:e378:8000:63bf:80ff:fffe, a Teredo address embedding 127.0.0.1, a"
            " loopback address",
        ),
        (
            "http://[::ffff:0:7f00:1]/",
            "::ffff:0:7f00:1, an IPv4-translated address embedding 127.0.0.1, a loopback address",
        ),
        ("http://[4000::1]/", "4000::1, not a global unicast address (outside 2000::/3)"),
        ("http://[e000::1]/", "e000::1, not a global unicast address (outside 2000::/3)"),
        ("http://[1::1]/", "1::1, not a global unicast address (outside 2000::/3)"),
        ("http://[::2:0:0:1]/", "::2:0:0:1, not a global unicast address (outside 2000::/3)"),
        ("http://１２７.０.０.１/", "127.0.0.1, a loopback address"),  # full-width digits
        ("http://127。0。0。1/", "127.0.0.1, a loopback address"),  # ideographic full stops
    ],
)
def test_addresses_that_are_not_public_are_refused_unless_allowed(url, what):
    with pytest.raises(TargetError) as caught:
        check_target(url)
    assert f"is {what}" in str(caught.value)
    assert str(caught.value).endswith(HINT) or "169.254" in what
    if "169.254" not in what:
        assert check_target(url, allow_private=True).addresses


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://[ff02::1]/", "a multicast address"),
        ("http://0.0.0.0/", "an unspecified address"),
        ("http://0.1.2.3/", "an unspecified address"),
        ("http://[::]/", "an unspecified address"),
        ("http://255.255.255.255/", "the broadcast address"),
        ("http://[::ffff:169.254.169.254]/", "embedding 169.254.169.254, a link-local address"),
        ("http://[::ffff:0:a9fe:a9fe]/", "embedding 169.254.169.254, a link-local address"),
    ],
)
def test_link_local_multicast_and_unspecified_addresses_are_always_refused(url, what):
    for allow_private in (False, True):
        with pytest.raises(TargetError) as caught:
            check_target(url, allow_private)
        assert what in str(caught.value) and "CRM_WEBHOOKS_ALLOW_PRIVATE" not in str(caught.value)


def test_names_are_checked_after_resolution():
    with pytest.raises(TargetError) as caught:
        check_target("http://localhost:9000/hook")
    assert str(caught.value).startswith("url: http://localhost:9000/hook resolves to ")
    assert "a loopback address" in str(caught.value) and str(caught.value).endswith(HINT)
    allowed = check_target("http://localhost:9000/hook", allow_private=True)
    assert allowed.host == "localhost" and allowed.port == 9000
    assert all(ipaddress.ip_address(a).is_loopback for a in allowed.addresses)
    assert allowed.host_header == "localhost:9000"


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost./hook",  # trailing dot
        "http://127.0.0.1./hook",
        "http://ⓛocalhost/hook",  # an international spelling of localhost
        "http://LOCALHOST/hook",
        "http://ｌｏｃａｌｈｏｓｔ/hook",
        "http://nowhere.invalid/hook",  # does not resolve
    ],
)
def test_tricky_names_are_refused(url):
    with pytest.raises(TargetError) as caught:
        check_target(url)
    message = str(caught.value)
    assert any(
        part in message for part in ("ending in a dot", "a loopback address", "cannot be resolved")
    ), message


def test_an_international_name_is_turned_into_its_ascii_form():
    with pytest.raises(TargetError, match="cannot be resolved") as caught:
        check_target("https://bücher.invalid/hook")
    assert "xn--bcher-kva.invalid" in str(caught.value)


def test_public_addresses_are_accepted_and_the_connection_is_pinned_to_them():
    target = check_target("https://203.0.114.9:8443/in?a=1#frag")
    assert target.addresses == ("203.0.114.9",)
    assert target.pinned("203.0.114.9") == "https://203.0.114.9:8443/in?a=1"
    assert target.host_header == "203.0.114.9:8443"
    six = check_target("http://[2606:4700:4700::1111]/")
    assert six.pinned(six.addresses[0]) == "http://[2606:4700:4700::1111]:80/"
    assert six.host_header == "[2606:4700:4700::1111]"
    assert check_target("http://[::ffff:8.8.8.8]/").addresses == ("::ffff:808:808",)
    assert check_target("http://[64:ff9b::808:808]/").addresses  # NAT64 of a public address


def test_refusal_names_what_an_address_is():
    assert refusal(ipaddress.ip_address("8.8.8.8"), False) is None
    assert refusal(ipaddress.ip_address("127.0.0.1"), False) == "a loopback address"
    assert refusal(ipaddress.ip_address("127.0.0.1"), True) is None
    assert refusal(ipaddress.ip_address("::1"), True) is None
    assert refusal(ipaddress.ip_address("169.254.1.1"), True) == "a link-local address"
    assert issubclass(TargetError, WebhookError)
