"""FastAGI round trip: the controller's FastAGI server (peer credential check, header limits,
time budget, one command at a time) against a bare asyncio responder that does the same
exchange with no checks, both driven over loopback by the same client, at 1, 10 and 50
concurrent requests.

    .venv/bin/python -m bench.agi_roundtrip
"""

from __future__ import annotations

import asyncio
import os
import time

from appliance.asterisk.fastagi import FastAgiServer
from bench.harness import report

HEADERS = (
    b"agi_network: yes\nagi_network_script: route\nagi_channel: PJSIP/carrier-00000001\n"
    b"agi_callerid: 13125550111\nagi_calleridname: Jane\nagi_arg_1: 7\n"
    b"agi_arg_2: 1700000000.1\n\n"
)
ANSWER = {"APPLIANCE_CONNECT": "7", "APPLIANCE_AFTER_HOURS": "", "APPLIANCE_READY": "1"}


async def bare_responder(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while (await reader.readline()).strip():
        pass
    for name, value in ANSWER.items():
        writer.write(f'SET VARIABLE {name} "{value}"\n'.encode())
        await reader.readline()
    writer.close()


async def one_request(port: int) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEADERS)
    while await reader.readline():
        writer.write(b"200 result=1\n")
    writer.close()
    return (time.perf_counter() - started) * 1000


async def measure(port: int, concurrency: int, rounds: int) -> list[float]:
    samples: list[float] = []
    for _ in range(rounds):
        samples += await asyncio.gather(*(one_request(port) for _ in range(concurrency)))
    return samples


async def main() -> None:
    async def handler(_request: object) -> dict[str, str]:
        return ANSWER

    controller = FastAgiServer({"route": handler}, timeout=1.0, allowed_uids={os.getuid()})
    await controller.start("127.0.0.1", 0)
    bare = await asyncio.start_server(bare_responder, "127.0.0.1", 0)
    bare_port = bare.sockets[0].getsockname()[1]
    rows = []
    for concurrency, rounds in ((1, 400), (10, 60), (50, 16)):
        await measure(bare_port, concurrency, 3)  # warm up both
        await measure(controller.port, concurrency, 3)
        base = await measure(bare_port, concurrency, rounds)
        cand = await measure(controller.port, concurrency, rounds)
        rows.append((f"{concurrency} concurrent", base, cand))
    print(
        report(
            "FastAGI round trip over loopback (client -> answer -> close)",
            "ms",
            rows,
            baseline="bare asyncio",
            candidate="controller",
        )
    )
    await controller.close()
    bare.close()


if __name__ == "__main__":
    asyncio.run(main())
