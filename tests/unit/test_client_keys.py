"""Who a tracking client is: its address (an IPv6 /64) for request budgets, its network (an
IPv4 /24, an IPv6 /48) for what one party could take many of: pool numbers, sessions, pages."""

import pytest

from appliance.ratelimit import client_key, network_key
from tests.hostile import STRINGS


@pytest.mark.parametrize(
    ("address", "client", "network"),
    [
        ("198.51.100.7", "198.51.100.7", "198.51.100.0/24"),
        ("::ffff:198.51.100.7", "198.51.100.7", "198.51.100.0/24"),
        ("2001:db8:1:2::5", "2001:db8:1:2::/64", "2001:db8:1::/48"),
        ("2001:db8:1:ffff:1:2:3:4", "2001:db8:1:ffff::/64", "2001:db8:1::/48"),
        ("fe80::1%eth0", "fe80::/64", "fe80::/48"),  # a link-local peer, with its zone
        (None, "", ""),
    ],
)
def test_a_client_and_its_network(address, client, network):
    assert (client_key(address), network_key(address)) == (client, network)


@pytest.mark.parametrize("text", [*STRINGS, "0.0.0.0/0", "::/0", "10.0.0.0/8"])
def test_what_is_not_an_address_is_a_network_of_its_own(text):
    """A forwarded address a proxy passed on as it came is no address: it names nothing
    wider than itself (a network written as one is not taken as one)."""
    assert network_key(text) == client_key(text) == text
