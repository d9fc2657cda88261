"""The AMI adapter's own guarantees, without Asterisk."""

import asyncio
import logging
import os

import pytest

from appliance.asterisk.ami import AmiClient, AmiError


@pytest.fixture
async def client():
    ami = AmiClient("127.0.0.1", 1, "appliance", "secret", allowed_uids={0})
    yield ami
    await ami.close()


async def listener_hears(allowed: set[int]) -> tuple[bytes, AmiClient]:
    """A listener on loopback playing Asterisk: what does the client send it?"""
    heard = asyncio.get_running_loop().create_future()

    async def asterisk(reader, writer):
        if heard.done():  # the client's later attempts
            writer.close()
            return
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        try:
            heard.set_result(await asyncio.wait_for(reader.read(200), 0.5))
        except (TimeoutError, ConnectionError):  # the client hung up without a word
            heard.set_result(b"")
        writer.close()

    server = await asyncio.start_server(asterisk, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ami = AmiClient("127.0.0.1", port, "appliance", "s3cret-value", allowed_uids=allowed)
    ami.start()
    try:
        return await asyncio.wait_for(heard, 5), ami
    finally:
        await ami.close()
        server.close()


async def test_the_secret_goes_only_to_a_listener_owned_by_asterisk_s_user():
    """This process owns the listener: as Asterisk's user it gets the login, as anyone else
    it gets nothing at all (the port can be taken by any local user while Asterisk is down)."""
    heard, ami = await listener_hears({os.getuid()})
    assert b"s3cret-value" in heard and ami.impostors == 0
    heard, ami = await listener_hears({os.getuid() + 1})
    assert heard == b"" and ami.impostors == 1 and ami.logins == 0


async def test_a_handler_that_fails_on_a_malformed_event_is_logged_and_skipped(client, caplog):
    seen = []

    def broken(event):
        raise KeyError("Linkedid")

    client.handlers += [broken, seen.append]
    with caplog.at_level(logging.ERROR):
        client._dispatch(client.manager, {"Event": "Newchannel"})
    assert seen == [{"Event": "Newchannel"}]
    assert "AMI event Newchannel could not be handled; skipped" in caplog.text


async def test_actions_need_a_connection_and_refuse_line_breaks(client):
    with pytest.raises(AmiError, match="not connected"):
        await client.action({"Action": "Ping"})
    client.connected.set()
    with pytest.raises(AmiError, match="line break"):
        await client.action({"Action": "DBPut", "Val": "x\r\nAction: Originate"})


async def test_reconnect_backoff_doubles_up_to_the_limit(client):
    client.max_backoff = 4
    waits = []
    for _ in range(5):
        waits.append(client.backoff)
        client._schedule_retry()
    assert waits == [0.5, 1.0, 2.0, 4, 4]


def test_asterisk_is_retried_at_least_every_second_by_default():
    assert AmiClient.__init__.__defaults__[0] == 1.0
