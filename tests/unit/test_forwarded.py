"""The client's address behind reverse proxies (the rule both listeners use), with forged
and hostile X-Forwarded-For."""

import ipaddress

import pytest

from appliance.config import ConfigError, load
from appliance.forwarded import client_address, parse_proxies
from tests.hostile import STRINGS

PROXIES = parse_proxies("10.0.0.0/8 192.0.2.1 fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", [], "203.0.113.5"),
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # not a proxy: ignored
        ("192.0.2.1", ["198.51.100.1"], "198.51.100.1"),
        ("192.0.2.1", [], "192.0.2.1"),  # nothing said: the proxy
        ("10.1.2.3", ["198.51.100.1, 10.0.0.9"], "198.51.100.1"),  # two proxies in a row
        ("192.0.2.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # the client's own word
        ("192.0.2.1", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # two headers, in order
        ("192.0.2.1", ["10.0.0.7"], "10.0.0.7"),  # a client inside the proxies' network
        ("192.0.2.1", ["unknown"], "192.0.2.1"),  # not an address: the last trusted one
        ("192.0.2.1", ["198.51.100.1, unknown"], "192.0.2.1"),
        ("192.0.2.1", ["198.51.100.1:4711"], "192.0.2.1"),
        ("192.0.2.1", [" 2001:DB8::0001 "], "2001:db8::1"),  # one spelling of each address
        ("::ffff:192.0.2.1", ["198.51.100.1"], "198.51.100.1"),  # a dual-stack socket
        ("::ffff:203.0.113.5", ["198.51.100.1"], "203.0.113.5"),
        ("192.0.2.1", ["::ffff:198.51.100.1"], "198.51.100.1"),
        ("fd00::1", ["2001:db8::7"], "2001:db8::7"),
    ],
)
def test_the_client_is_the_last_address_no_trusted_proxy_wrote(peer, forwarded, client):
    assert client_address(peer, forwarded, PROXIES) == client


def test_without_proxies_the_header_is_never_read():
    assert client_address("192.0.2.1", ["198.51.100.1"], ()) == "192.0.2.1"


@pytest.mark.parametrize("value", STRINGS)
def test_hostile_forwarded_for_names_an_address_or_nobody(value):
    """From a trusted proxy junk names no client: the result is always an address, and from
    anyone else the peer's own."""
    found = client_address("192.0.2.1", [value], PROXIES)
    ipaddress.ip_address(found)
    assert client_address("203.0.113.5", [value], PROXIES) == "203.0.113.5"


@pytest.mark.parametrize(
    ("text", "count"),
    [("", 0), ("127.0.0.1", 1), ("10.0.0.0/8  192.168.1.7/24\t::1 fd00::/8", 4)],
)
def test_proxies_are_addresses_or_networks(text, count):
    assert len(parse_proxies(text)) == count


@pytest.mark.parametrize("text", ["0.0.0.0/0", "::/0", "proxy.example", "10.0.0.0/33", "1.2.3"])
def test_proxies_that_are_not_or_would_trust_everyone_are_refused(text):
    with pytest.raises(ValueError, match=r"not an address|every address"):
        parse_proxies(text)


@pytest.mark.parametrize("value", STRINGS)
def test_hostile_proxy_lists_are_refused_or_parsed(value):
    try:
        networks = parse_proxies(value)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(n.prefixlen > 0 for n in networks)


@pytest.mark.parametrize("section", ["http", "tracking"])
def test_a_bad_proxy_list_stops_the_config_naming_its_key(tmp_path, section):
    ini = tmp_path / "a.ini"
    ini.write_text(f"[{section}]\ntrusted_proxies = 10.0.0.1 0.0.0.0/0\n")
    with pytest.raises(ConfigError, match=f"{section}.trusted_proxies: '0.0.0.0/0' would trust"):
        load(ini, environ={})
