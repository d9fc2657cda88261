"""The floor of any FastAGI decision: a bare asyncio responder that sets the same variables as
the controller's dynamic-route answer, with no checks, no routing and no records. Run as a
process: python -m bench.bare_agi PORT"""

from __future__ import annotations

import asyncio
import sys

ANSWER = (("APPLIANCE_CONNECT", "1"), ("APPLIANCE_AFTER_HOURS", ""), ("APPLIANCE_READY", "1"))


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
