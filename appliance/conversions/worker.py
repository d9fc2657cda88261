"""Turns finished calls and new leads into conversions and deliveries, beside the call path:
told by the event seam (a call finished) and by the visit writer (leads written), it does the
database work off the event loop, one item at a time."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session, sessionmaker

from appliance.conversions import store
from appliance.events import CallFinished

log = logging.getLogger(__name__)


class Converter:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.db = sessions
        self.queue: asyncio.Queue[tuple[str, str | int]] = asyncio.Queue()
        self.queued = 0  # deliveries queued since start

    def on_call_finished(self, event: CallFinished) -> None:
        self.queue.put_nowait(("call", event.call_id))

    def on_leads(self, lead_ids: list[int]) -> None:
        for lead_id in lead_ids:
            self.queue.put_nowait(("lead", lead_id))

    async def run(self) -> None:
        while True:
            kind, key = await self.queue.get()
            try:
                self.queued += await asyncio.to_thread(self.evaluate, kind, key)
            except Exception:
                log.exception("conversions of %s %s failed", kind, key)

    def evaluate(self, kind: str, key: str | int) -> int:
        with self.db.begin() as session:
            if kind == "call":
                return store.on_call(session, str(key))
            return store.on_lead(session, int(key))
