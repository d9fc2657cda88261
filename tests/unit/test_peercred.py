"""The owner of the other end of a loopback connection, asked of the kernel (sock_diag)."""

import os
import socket

import pytest

from appliance.asterisk.peercred import peer_uid, request, uid_of_reply


@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
)
def test_both_ends_of_a_loopback_connection_are_found(family, host):
    with socket.socket(family) as server:
        server.bind((host, 0))
        server.listen()
        with socket.create_connection(server.getsockname()[:2]) as client:
            accepted, _ = server.accept()
            with accepted:
                assert peer_uid(client) == os.getuid()  # the listener's end
                assert peer_uid(accepted) == os.getuid()  # the client's end


def test_a_socket_that_is_not_connected_has_no_peer():
    with socket.socket() as lonely:
        assert peer_uid(lonely) is None


def test_the_request_names_the_peer_s_socket_by_its_four_tuple():
    message = request(("127.0.0.1", 40000), ("127.0.0.1", 573))
    assert len(message) == 16 + 8 + 48
    assert message[24:28] == (40000).to_bytes(2, "big") + (573).to_bytes(2, "big")
    assert message[28:32] == bytes([127, 0, 0, 1])


@pytest.mark.parametrize(
    "reply",
    [b"", b"\x00" * 20, (96).to_bytes(4, "little") + (2).to_bytes(2, "little") + b"\x00" * 90],
)
def test_errors_and_short_replies_mean_unknown(reply):
    assert uid_of_reply(reply) is None
