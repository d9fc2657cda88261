"""The FastAGI server with hostile peers, over real loopback sockets."""

import asyncio
import contextlib
import os

import pytest

from appliance.asterisk.fastagi import FastAgiServer

HEADERS = (
    "agi_network: yes\nagi_network_script: inbound\nagi_channel: PJSIP/carrier-1\n"
    "agi_callerid: 13125550111\nagi_arg_1: 12025550123\nagi_arg_2: 1700000000.1\n\n"
)


async def fake_asterisk(port: int, headers: str = HEADERS) -> list[str]:
    """Play Asterisk's side: send headers, answer every command with 200 result=1."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(headers.encode())
    commands = []
    while line := await reader.readline():
        commands.append(line.decode().strip())
        writer.write(b"200 result=1\n")
    writer.close()
    return commands


@pytest.fixture
async def server(request):
    """The server with a budget of 0.5 s per request, or the test's (indirect parameter)."""
    seen = []

    async def inbound(request, channel):
        seen.append(request)
        return {"APPLIANCE_CONNECT": "7", "APPLIANCE_AFTER_HOURS": 'y"es', "APPLIANCE_READY": "1"}

    async def slow(request, channel):
        await asyncio.sleep(10)
        return {}

    budget = getattr(request, "param", 0.5)
    agi = FastAgiServer({"inbound": inbound, "slow": slow}, timeout=budget,
                        allowed_uids={os.getuid()})  # fmt: skip
    await agi.start("127.0.0.1", 0)
    agi.seen = seen
    yield agi
    await agi.close()


async def test_answers_with_quoted_variables(server):
    commands = await fake_asterisk(server.port)
    assert commands == [
        'SET VARIABLE APPLIANCE_CONNECT "7"',
        'SET VARIABLE APPLIANCE_AFTER_HOURS "y\\"es"',
        'SET VARIABLE APPLIANCE_READY "1"',
    ]
    assert server.seen[0].args == ("12025550123", "1700000000.1")


async def raw_peer(port: int, payload: bytes, close: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    if close:
        writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


@pytest.mark.parametrize(
    "payload",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"agi_network_script: inbound\nagi_channel: x",  # closes mid-headers
        b"agi_network_script: inbound\n",  # closes before the blank line
        b"agi_x: " + b"A" * 100_000 + b"\n\n",
        b"agi_network_script: nothere\n\n",
        b"".join(b"agi_h%d: x\n" % i for i in range(500)) + b"\n",
        b"\xff\xfe\x00garbage\n\n",
    ],
)
async def test_hostile_requests_are_dropped_without_an_answer(server, payload):
    assert await raw_peer(server.port, payload) == b""
    assert await fake_asterisk(server.port)  # the server still answers real requests


@pytest.mark.parametrize("server", [2.0], indirect=True)  # far longer than 20 answers take
async def test_silent_and_slow_peers_do_not_block_other_calls(server):
    silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(20)]
    dropped = [asyncio.ensure_future(reader.read()) for reader, _writer in silent]
    results = await asyncio.gather(*(fake_asterisk(server.port) for _ in range(20)))
    assert all(len(r) == 3 for r in results)
    assert not any(d.done() for d in dropped), "real requests waited for the silent peers"
    for drop in dropped:  # each silent peer is dropped once its budget is spent
        assert await asyncio.wait_for(drop, 10) == b""


async def test_handler_over_budget_gives_no_answer(server):
    headers = HEADERS.replace("inbound", "slow")
    assert await asyncio.wait_for(fake_asterisk(server.port, headers), 3) == []


async def test_event_loop_keeps_running_when_peer_closes_mid_headers(server):
    """panoramisk 1.4 spins forever here; this server must not freeze the loop."""
    ticks = 0
    ticked = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1
            if ticks >= 10:
                ticked.set()

    task = asyncio.create_task(ticker())
    for _ in range(10):
        await raw_peer(server.port, b"agi_network_script: inbound\nagi_chan")
    async with asyncio.timeout(10):  # a bound against a hang, not a timing
        await ticked.wait()
    task.cancel()
    assert ticks >= 10


async def test_only_asterisk_s_user_is_answered(server):
    """Loopback is not a credential: a request from another local user gets nothing."""
    server.allowed_uids = frozenset({os.getuid() + 1})
    # closed before reading what was sent: a reset, and no answer either
    with contextlib.suppress(ConnectionResetError):
        assert await raw_peer(server.port, HEADERS.encode()) == b""
    assert server.seen == [] and server.refused == 1


async def test_a_handler_asks_the_channel_one_command_at_a_time():
    async def ask(request, channel):
        linkedid = await channel.get_full_variable("${CHANNEL(linkedid)}")
        missing = await channel.get_full_variable("${NOPE}")
        return {"APPLIANCE_CALL_ID": f"{linkedid}/{missing}"}

    agi = FastAgiServer({"ask": ask}, timeout=1, allowed_uids={os.getuid()})
    await agi.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", agi.port)
    writer.write(HEADERS.replace("inbound", "ask").encode())
    replies = iter(["200 result=1 (1700000000.1)", "200 result=0", "200 result=1"])
    commands = []
    while line := await reader.readline():
        commands.append(line.decode().strip())
        writer.write(f"{next(replies)}\n".encode())
    writer.close()
    await agi.close()
    assert commands == [
        'GET FULL VARIABLE "${CHANNEL(linkedid)}"',
        'GET FULL VARIABLE "${NOPE}"',
        'SET VARIABLE APPLIANCE_CALL_ID "1700000000.1/None"',
    ]
    assert agi.answered == 1
