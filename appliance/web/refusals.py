"""Refused requests in the audit log: every one counted, the first `per_minute` of each
client network in each minute written one by one, and the rest of that minute written as one
entry with their number once the minute is over. A flood thus costs the database one row
more, not one row a request, and still leaves its size on record, even when the client
never comes back: the counts of minutes that are over are written every few seconds, and
those of the minute going on when the admin UI stops."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from appliance import audit
from appliance.access import Principal
from appliance.ratelimit import client_key
from appliance.web.keys import PRINCIPAL
from appliance.web.offload import POOL, offload

log = logging.getLogger(__name__)
OTHERS = "*"  # the networks beyond the tally's bound, counted together
COUNT_ACTION = "request.refused.count"


@dataclass(frozen=True)
class Minute:
    """What one client network was refused in one minute."""

    network: str
    start: int  # minutes since the epoch
    written: int  # written one by one
    unwritten: int  # only counted

    def detail(self) -> str:
        stamp = dt.datetime.fromtimestamp(self.start * 60, dt.UTC).strftime("%Y-%m-%d %H:%M")
        return (
            f"{self.written + self.unwritten} requests refused in the minute from {stamp} UTC; "
            f"{self.unwritten} of them not written one by one"
        )


class Tally:
    """Refusals per client network and minute (pure: the caller gives the time). Bounded:
    beyond `networks` networks in play, the others are counted together as OTHERS."""

    def __init__(self, per_minute: int, networks: int = 10_000) -> None:
        self.per_minute = per_minute
        self.networks = networks
        self._minutes: dict[tuple[str, int], list[int]] = {}  # -> [written, unwritten]

    def take(self, network: str, now: float) -> bool:
        """Count a refusal; True when it is to be written one by one."""
        start = int(now // 60)
        key = (network, start)
        if key not in self._minutes and len(self._minutes) >= self.networks:
            key = (OTHERS, start)
        counts = self._minutes.setdefault(key, [0, 0])
        written = counts[0] < self.per_minute
        counts[0 if written else 1] += 1
        return written

    def close(self, now: float, everything: bool = False) -> list[Minute]:
        """Forget the minutes that are over (all of them: `everything`); returns those with
        refusals that were only counted."""
        current = int(now // 60)
        over = [k for k in self._minutes if everything or k[1] < current]
        counted = [(k, self._minutes.pop(k)) for k in over]
        return [Minute(n, s, w, u) for (n, s), (w, u) in counted if u]


class RefusalLog:
    """The audit log's side of refused requests (see the module's docstring). `counted` is
    told of every refusal (the /metrics counter)."""

    def __init__(
        self,
        sessions: sessionmaker[Session] | None,
        per_minute: int = 30,
        every: float = 10.0,
        clock: Callable[[], float] = time.time,
        counted: Callable[[], object] = lambda: None,
    ) -> None:
        self.sessions = sessions
        self.tally = Tally(per_minute)
        self.every = every
        self.clock = clock
        self.counted = counted

    async def note(self, request: web.Request, status: int, message: str) -> None:
        if self.sessions is None or request.path.startswith("/static/"):
            return
        self.counted()
        client = request.remote or "?"
        if not self.tally.take(client_key(client), self.clock()):
            return
        principal: Principal | None = request.get(PRINCIPAL)
        detail = f"{status} {request.method} {request.path[:200]}: {message}"
        try:
            await offload(request, self._write, principal, client, detail)
        except Exception:
            log.exception("audit log unavailable for a refused request")

    def _write(self, principal: Principal | None, client: str, detail: str) -> None:
        assert self.sessions is not None
        with self.sessions.begin() as session:
            audit.record(
                session,
                principal.actor if principal else "anonymous",
                "request.refused",
                client=client,
                detail=detail,
                account_id=principal.account_id if principal else None,
            )

    async def write_counts(self, pool: Executor, everything: bool = False) -> None:
        """Write the counts of the minutes that are over (all: `everything`)."""
        minutes = self.tally.close(self.clock(), everything)
        if not minutes or self.sessions is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(pool, self._write_counts, minutes)
        except Exception:
            log.exception("audit log unavailable: %d refused requests not counted in it",
                          sum(m.unwritten for m in minutes))  # fmt: skip

    def _write_counts(self, minutes: list[Minute]) -> None:
        assert self.sessions is not None
        with self.sessions.begin() as session:
            for minute in minutes:
                audit.record(
                    session,
                    "appliance",
                    COUNT_ACTION,
                    client=minute.network,
                    detail=minute.detail(),
                )


REFUSALS: web.AppKey[RefusalLog] = web.AppKey("refusals", RefusalLog)


async def counts_written(app: web.Application) -> AsyncIterator[None]:
    """For the app's cleanup_ctx: the counts of each minute, written once it is over, and of
    the minute going on when the app stops."""
    refusals, pool = app[REFUSALS], app[POOL]

    async def every_few_seconds() -> None:
        while True:
            await asyncio.sleep(refusals.every)
            await refusals.write_counts(pool)

    task = asyncio.create_task(every_few_seconds())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await refusals.write_counts(pool, everything=True)
