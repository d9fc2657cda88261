"""One writer for call records: batches writes into single transactions off the event loop,
lets call setup go first, and tells the event seam about every call it started (its record
first written), answered and finished.

Calls never wait for the controller, but on a small box they share its CPUs: measured, a row
written while a burst of calls was being set up delayed their ringing by tens of ms. So a
batch waits until call events pause (at most `max_defer` seconds)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from appliance import events
from appliance.calls import model
from appliance.calls.model import CallWrite
from appliance.calls.outcome import CallOutcome
from appliance.calls.store import CallStore
from appliance.events import CallFinished, EventBus

log = logging.getLogger(__name__)

MAX_BATCH = 500


class CallWriter:
    def __init__(
        self,
        store: CallStore,
        bus: EventBus,
        quiet_in: Callable[[], float] = lambda: 0.0,
        max_defer: float = 1.0,
    ) -> None:
        self.store = store
        self.bus = bus
        self.quiet_in = quiet_in
        self.max_defer = max_defer
        self.queue: asyncio.Queue[CallWrite] = asyncio.Queue()
        self.current: asyncio.Future[None] | None = None

    def submit(self, item: CallWrite) -> None:
        self.queue.put_nowait(item)

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            await self._yield_to_call_setup()
            while not self.queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self.queue.get_nowait())
            # Shielded: a shutdown cancels run() but lets the batch in progress reach the disk.
            self.current = asyncio.ensure_future(self._write_or_retry(batch))
            await asyncio.shield(self.current)

    async def _yield_to_call_setup(self) -> None:
        """Sleep until call events pause, for `max_defer` seconds at most: each sleep lasts
        until the earliest moment they can have paused, and events that came meanwhile push
        that moment on, so the loop wakes only when there is something to decide."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_defer
        # ASYNC110 is wrong here: a pause is time passing, not a state another task sets
        while (pause := min(self.quiet_in(), deadline - loop.time())) > 0:  # noqa: ASYNC110
            await asyncio.sleep(pause)

    async def _write_or_retry(self, batch: list[CallWrite]) -> None:
        try:
            await self.write(batch)
        except Exception:
            log.exception("%d call record write(s) failed; retrying in 1 s", len(batch))
            await asyncio.sleep(1)
            for item in batch:
                self.submit(item)

    async def write(self, items: Sequence[CallWrite]) -> list[str | None]:
        """Write now, in one transaction (raises if it fails), then emit what was news; return
        each item's call id (the AGI script `track` writes its call's start this way)."""
        results = await asyncio.to_thread(self.store.write, items)
        for item, (call_id, news) in zip(items, results, strict=True):
            if news and call_id is not None:
                self._emit(item, call_id)
        return [call_id for call_id, _ in results]

    def _emit(self, item: CallWrite, call_id: str) -> None:
        if isinstance(item, model.CallStarted):
            self.bus.emit(events.CallStarted(call_id, item.linkedid))
        elif isinstance(item, model.CallAnswered):
            self.bus.emit(events.CallAnswered(call_id, item.linkedid))
        elif isinstance(item, CallOutcome):
            log.info(
                "call %s ended: %s, talk %.1fs, ring %.1fs",
                call_id,
                item.disposition,
                item.talk_seconds,
                item.ring_seconds,
            )
            self.bus.emit(
                CallFinished(
                    call_id,
                    item.linkedid,
                    item.disposition,
                    item.talk_seconds,
                    item.ring_seconds,
                )
            )

    async def flush(self) -> None:
        """Finish the batch in progress and write whatever is queued (at shutdown)."""
        if self.current is not None:
            await asyncio.gather(self.current, return_exceptions=True)
        batch = []
        while not self.queue.empty():
            batch.append(self.queue.get_nowait())
        if batch:
            await self._write_or_retry(batch)
