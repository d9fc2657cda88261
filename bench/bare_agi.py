"""The floor: a bare asyncio FastAGI responder that sets the same variables as the controller,
with no checks, no routing and no records. Run as a process: python -m bench.bare_agi PORT"""

from __future__ import annotations

import asyncio
import sys

ANSWER = (
    ("APPLIANCE_CALL_ID", "0" * 32),
    ("APPLIANCE_DIAL", "PJSIP/+12025550199@carrier"),
    ("APPLIANCE_DIAL_COUNT", "1"),
    ("APPLIANCE_RING_TIMEOUT", "30"),
)


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while (await reader.readline()).strip():
        pass
    for name, value in ANSWER:
        writer.write(f'SET VARIABLE {name} "{value}"\n'.encode())
        await reader.readline()
    writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(answer, "127.0.0.1", port)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
