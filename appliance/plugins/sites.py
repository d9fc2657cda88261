"""Where the call path calls the plugins: the event bus's call events (started, answered,
ended, recording stored) become hook calls, with the call's data read from the database off
the loop. A call whose route a plugin decided already had its call_started: its record gets
the tags the plugins returned then, and call_started is not called twice."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Coroutine, Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from appliance import events
from appliance.calls import annotations as annotate
from appliance.plugins.calldata import read_call
from appliance.plugins.manager import PluginManager

log = logging.getLogger(__name__)

Tags = Sequence[tuple[str, Sequence[str]]]  # (origin, tags)


class Decided:
    """Calls whose call_started ran at their dynamic step, with the tags to write: bounded
    (a call that never gets a record is forgotten after `keep` seconds or `most` calls)."""

    def __init__(self, most: int = 10_000, keep: float = 86_400) -> None:
        self.most, self.keep = most, keep
        self.calls: OrderedDict[str, tuple[float, Tags]] = OrderedDict()

    def remember(self, linkedid: str, tags: Tags) -> None:
        now = time.monotonic()
        self.calls[linkedid] = (now, list(tags))
        while self.calls and (
            len(self.calls) > self.most or next(iter(self.calls.values()))[0] < now - self.keep
        ):
            self.calls.popitem(last=False)

    def take(self, linkedid: str) -> Tags | None:
        """The tags to write, or None when the call was not decided by plugins."""
        found = self.calls.pop(linkedid, None)
        return None if found is None else found[1]


class HookSites:
    def __init__(
        self, plugins: PluginManager, sessions: sessionmaker[Session], decided: Decided
    ) -> None:
        self.plugins = plugins
        self.sessions = sessions
        self.decided = decided
        self.tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, bus: events.EventBus) -> None:
        bus.subscribe(events.CallStarted, lambda e: self._spawn(self.started(e)))
        bus.subscribe(events.CallAnswered, lambda e: self._spawn(self.plain("call_answered", e)))
        bus.subscribe(events.CallFinished, lambda e: self._spawn(self.plain("call_ended", e)))
        bus.subscribe(events.RecordingSealed, lambda e: self._spawn(self.stored(e)))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("plugin hook call failed: %s", task.exception())

    async def started(self, event: events.CallStarted) -> None:
        tags = self.decided.take(event.linkedid)
        if tags is not None:
            await asyncio.to_thread(self.write_tags, event.call_id, tags)
            return
        await self.plain("call_started", event, deciding=False)

    async def plain(self, hook: str, event: Any, **more: Any) -> None:
        if not self.plugins.implemented(hook):
            return
        call = await asyncio.to_thread(read_call, self.sessions, event.call_id)
        if call is not None:
            await self.plugins.acall(hook, call=call, **more)

    async def stored(self, event: events.RecordingSealed) -> None:
        await self.plain("recording_stored", event, recording={"seconds": event.seconds})

    def write_tags(self, call_id: str, tags: Tags) -> None:
        with self.sessions.begin() as session:
            for origin, some in tags:
                try:
                    annotate.add_tags(session, call_id, some, origin)
                except annotate.AnnotationError as exc:
                    log.warning("call %s: tags from %s not written: %s", call_id, origin, exc)
