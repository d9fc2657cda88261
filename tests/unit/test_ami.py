"""The AMI adapter's own guarantees, without Asterisk."""

import logging

import pytest

from appliance.asterisk.ami import AmiClient, AmiError


@pytest.fixture
async def client():
    ami = AmiClient("127.0.0.1", 1, "appliance", "secret")
    yield ami
    await ami.close()


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
