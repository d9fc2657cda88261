"""Which addresses webhooks and ad platforms may reach: every spelling of this machine and of
private networks is refused, public addresses are not, destinations.allowed_networks names the
exceptions; a webhook naming one of them is refused when it is saved; a failed send is kept as
a fixed reason, never as what answered."""

from __future__ import annotations

import ipaddress

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from appliance.admin import AdminError
from appliance.config import ConfigError, load
from appliance.conversions import outbound, reach
from appliance.conversions.admin import webhook_url

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("fd00::1", "private"),
    ("fec0::1", "private"),
    ("::ffff:10.0.0.1", "private"),
    ("100.64.0.1", "shared (carrier-grade NAT)"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%2", "link-local"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
    ("::7f00:1", "loopback"),  # IPv4-compatible 127.0.0.1
    ("not-an-address", "not an IP"),
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "172.32.0.1", "100.128.0.1", "203.0.113.10", "2001:db8::1",
          "2606:4700::1111", "64:ff9b::808:808"]  # fmt: skip


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_this_machine_and_private_networks_are_refused(address, why):
    assert reach.refusal(address) == why


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_reached(address):
    assert reach.refusal(address) is None


def test_allowed_networks_open_exactly_what_they_name():
    allowed = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.5.0/24"))
    assert reach.refusal("127.0.0.1", allowed) is None
    assert reach.refusal("::ffff:127.0.0.1", allowed) is None
    assert reach.refusal("10.0.5.77", allowed) is None
    assert reach.refusal("127.0.0.2", allowed) == "loopback"
    assert reach.refusal("::1", allowed) == "loopback"
    assert reach.refusal("10.0.6.1", allowed) == "private"


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),  # decimal
        ("0x7f000001", "127.0.0.1"),  # hex
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("127.1", "127.0.0.1"),  # short
        ("0", "0.0.0.0"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("[::1]", "::1"),
        ("crm.example.com", None),
        ("1e100", None),
    ],
)
def test_an_address_in_any_spelling_is_an_address(host, address):
    found = reach.literal(host)
    assert (str(found) if found else None) == address


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST.", "ip6-localhost", "api.localhost", "2130706433", "0x7f000001",
     "0177.0.0.1", "127.1", "::1", "0", "10.0.0.1", "169.254.169.254", "::ffff:192.168.0.1"],
)  # fmt: skip
def test_a_host_that_is_this_machine_or_a_private_network_is_refused_when_saved(host):
    assert reach.host_refusal(host) is not None
    shown = f"[{host}]" if ":" in host else host
    with pytest.raises(AdminError, match="may not reach this machine") as refused:
        webhook_url(f"https://{shown}:5038/hooks/secret-token")
    assert "secret-token" not in str(refused.value)  # the host is named, not the path


def test_plain_http_only_to_an_allowed_address():
    allowed = (ipaddress.ip_network("127.0.0.1/32"),)
    assert webhook_url("http://127.0.0.1:8080/h", allowed) == "http://127.0.0.1:8080/h"
    assert webhook_url("https://crm.example.com/h") == "https://crm.example.com/h"
    for url, networks in [
        ("http://127.0.0.1:8080/h", ()),  # not allowed
        ("http://localhost:8080/h", allowed),  # a name, not the address
        ("http://crm.example.com/h", allowed),
    ]:
        with pytest.raises(AdminError, match="http only to an address in"):
            webhook_url(url, networks)


def test_allowed_networks_are_checked_when_the_config_is_read():
    loaded = load(environ={"APPLIANCE_DESTINATIONS_ALLOWED_NETWORKS": "127.0.0.1/32 10.0.5.0/24"})
    assert [str(n) for n in loaded.destinations.allowed] == ["127.0.0.1/32", "10.0.5.0/24"]
    with pytest.raises(ConfigError, match=r"destinations\.allowed_networks"):
        load(environ={"APPLIANCE_DESTINATIONS_ALLOWED_NETWORKS": "crm.example.com"})
    assert load(environ={}).destinations.allowed == ()


def test_the_socket_factory_refuses_before_any_socket_is_made():
    make = outbound.guarded_socket(())
    with pytest.raises(outbound.RefusedAddress, match="refused: loopback address"):
        make((2, 1, 6, "", ("127.0.0.1", 5038)))
    allowed = outbound.guarded_socket((ipaddress.ip_network("127.0.0.1/32"),))
    allowed((2, 1, 6, "", ("127.0.0.1", 5038))).close()


KEY = ConnectionKey("h", 443, True, True, None, None, None)
BANNER = "Asterisk Call Manager/11.0.0 at http://127.0.0.1:5038/hooks/secret"


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (aiohttp.ClientConnectorError(KEY, outbound.RefusedAddress("private")),
         "refused: private address"),
        (aiohttp.ClientConnectorDNSError(KEY, OSError(BANNER)), "the name does not resolve"),
        (aiohttp.ClientConnectorError(KEY, OSError(111, BANNER)), "could not connect"),
        (aiohttp.ServerDisconnectedError(BANNER), "closed without an answer"),
        (aiohttp.ClientResponseError(None, (), status=400, message=BANNER),  # type: ignore[arg-type]
         "the answer is not HTTP"),
        (TimeoutError(BANNER), "no answer in time"),
        (aiohttp.InvalidURL(BANNER), "not a valid address"),
        (OSError(BANNER), "the connection failed"),
    ],
)  # fmt: skip
def test_a_failure_is_kept_as_a_fixed_reason(exc, reason):
    assert outbound.reason(exc) == reason
    assert outbound.final(exc) == reason.startswith(("refused", "not a valid"))
