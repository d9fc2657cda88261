"""The call writer lets call setup go first: a batch is written once call events pause, or
after `max_defer` at most, in a real SQLite database. The pause is read from `quiet_in`
(seconds until call events can have paused), so these tests script it instead of timing it."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from appliance import events
from appliance.calls.model import CallStarted
from appliance.calls.store import CallStore
from appliance.calls.writer import CallWriter
from appliance.db.engine import session_factory
from tests.made_once import migrated_sqlite

HANG = 10.0  # seconds: a bound against a hang, not a timing


@pytest.fixture
def store(tmp_path):
    engine = migrated_sqlite(tmp_path / "calls.db")
    yield CallStore(session_factory(engine))
    engine.dispose()


def started(linkedid: str) -> CallStarted:
    return CallStarted(linkedid, "ab" * 16, "12025550123", "+13125550111", "Pat",
                       time.time(), None, None, False)  # fmt: skip


async def first_write(writer: CallWriter, bus: events.EventBus, asked: list[float]) -> int:
    """Run the writer until it has written one call; how often it had asked `quiet_in` then."""
    written = asyncio.Event()
    asked_when_written: list[int] = []

    def on_started(_: events.CallStarted) -> None:
        asked_when_written.append(len(asked))
        written.set()

    bus.subscribe(events.CallStarted, on_started)
    task = asyncio.create_task(writer.run())
    try:
        writer.submit(started("1.1"))
        async with asyncio.timeout(HANG):
            await written.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return asked_when_written[0]


async def test_a_batch_waits_until_call_events_pause(store):
    """Events keep coming twice (the pause moves on), then stop: the writer asks again after
    each sleep and writes only once they have paused."""
    script = [0.01, 0.01, 0.0]
    asked: list[float] = []

    def quiet_in() -> float:
        asked.append(script[min(len(asked), len(script) - 1)])
        return asked[-1]

    bus = events.EventBus()
    writer = CallWriter(store, bus, quiet_in=quiet_in, max_defer=HANG)
    assert await first_write(writer, bus, asked) == 3
    assert asked == script


async def test_a_batch_waits_no_longer_than_max_defer(store):
    """Calls that never pause (a flood) do not hold the call records back for ever."""
    asked: list[float] = []

    def quiet_in() -> float:
        asked.append(3600.0)
        return asked[-1]

    bus = events.EventBus()
    writer = CallWriter(store, bus, quiet_in=quiet_in, max_defer=0.05)
    assert await first_write(writer, bus, asked) >= 1


async def test_nothing_waits_while_no_call_is_being_set_up(store):
    asked: list[float] = []

    def quiet_in() -> float:
        asked.append(0.0)
        return 0.0

    bus = events.EventBus()
    writer = CallWriter(store, bus, quiet_in=quiet_in, max_defer=HANG)
    assert await first_write(writer, bus, asked) == 1
