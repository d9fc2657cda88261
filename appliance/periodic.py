"""Periodic work on APScheduler: reconciliation with Asterisk's CDRs, recording limits, and
the purge of finished jobs. A run that fails is logged and the next one comes as planned; a
run still going when the next is due is not doubled (one instance, missed runs coalesced)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


def scheduler() -> AsyncIOScheduler:
    return AsyncIOScheduler(timezone=dt.UTC)


def every(
    schedule: AsyncIOScheduler,
    name: str,
    seconds: float,
    work: Callable[[], Awaitable[object]],
    first: float = 0.0,
) -> None:
    """Run `work` every `seconds`, the first time `first` seconds from now."""

    async def run() -> None:
        try:
            await work()
        except asyncio.CancelledError:  # the controller is stopping: not a failure
            return
        except Exception:
            log.exception("%s failed; it runs again in %s s", name, seconds)

    schedule.add_job(
        run,
        "interval",
        seconds=seconds,
        id=name,
        name=name,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=max(1, int(seconds)),
        next_run_time=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=first),
    )
