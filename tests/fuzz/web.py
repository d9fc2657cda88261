"""What the HTTP fuzz tests share: a world served in-process on loopback and driven from
synchronous Hypothesis tests through one event loop, and the checks every answer must pass."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

from aiohttp import ClientResponse

from tests.fuzz.harness import CrossTenant, Finding, Hang, Unhandled

T = TypeVar("T")


class Loop:
    """One event loop for a module's server and client; each call bounded against hangs."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()

    def run(self, work: Awaitable[T], bound: float = 30.0) -> T:
        async def bounded() -> T:
            try:
                async with asyncio.timeout(bound):
                    return await work
            except TimeoutError:
                raise Hang(f"no answer within {bound}s") from None

        return self.runner.run(bounded())

    def close(self) -> None:
        self.runner.close()


async def answer(response: ClientResponse) -> tuple[int, dict[str, str], str]:
    body = await response.text(errors="replace")
    return response.status, dict(response.headers), body


def check_answer(
    status: int,
    headers: dict[str, str],
    body: str,
    required: dict[str, str],
    foreign: Iterable[str] = (),
    sent: str = "",
) -> None:
    """2xx, 3xx or 4xx with the usual headers, and none of another tenant's data (what the
    request itself carried aside)."""
    if status >= 500:
        raise Unhandled(f"{status}: {body[:300]}")
    for name, value in required.items():
        if headers.get(name) != value:
            raise Finding(f"{status} answer without {name}: {value} ({headers.get(name)!r})")
    leaked = [marker for marker in foreign if marker in body and marker not in sent]
    if leaked:
        raise CrossTenant(f"{status} answer shows another tenant's {leaked}")


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)
