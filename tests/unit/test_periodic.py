"""Periodic work on the real APScheduler: it runs again and again, a failing run does not stop
the next, and a slow run is never doubled."""

import asyncio

from appliance import periodic


async def test_work_runs_periodically_and_failures_do_not_stop_it():
    runs = {"n": 0, "running": 0, "most": 0}

    async def work():
        runs["n"] += 1
        runs["running"] += 1
        runs["most"] = max(runs["most"], runs["running"])
        try:
            await asyncio.sleep(0.12)  # slower than its interval
            if runs["n"] % 2:
                raise RuntimeError("every other run fails")
        finally:
            runs["running"] -= 1

    schedule = periodic.scheduler()
    periodic.every(schedule, "test work", 0.05, work)
    schedule.start()
    try:
        async with asyncio.timeout(10):
            while runs["n"] < 4:  # noqa: ASYNC110 - counts the scheduler's runs, bounded
                await asyncio.sleep(0.01)
    finally:
        schedule.shutdown(wait=False)
    assert runs["most"] == 1  # never two at once
