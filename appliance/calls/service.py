"""The call path's asyncio side: AMI events -> tracker -> database, the static fallback routes
in AstDB, and reconciliation with Asterisk's CDRs after every (re)connect."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from appliance.asterisk.ami import AmiClient, AmiError
from appliance.calls import cdr
from appliance.calls.store import CallStore, RoutingTable, call_id_for, is_call_id
from appliance.calls.tracker import CallTracker
from appliance.calls.writer import CallWriter

log = logging.getLogger(__name__)


class CallNotLive(Exception):
    """No call in progress with that id."""


class CallPath:
    def __init__(
        self,
        store: CallStore,
        writer: CallWriter,
        ami: AmiClient,
        cdr_file: Path,
        refresh_interval: float = 5.0,
    ) -> None:
        self.store = store
        self.writer = writer
        self.ami = ami
        self.cdr_file = cdr_file
        self.refresh_interval = refresh_interval
        self.table = RoutingTable()
        self.tracker = CallTracker()
        self.after_reconcile: list[Callable[[], Awaitable[object]]] = []
        self.pushed: dict[str, dict[str, str]] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        ami.handlers.append(self.on_event)
        ami.on_login.append(self.on_login)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call path task failed", exc_info=task.exception())

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    # AMI -------------------------------------------------------------------------------
    def on_event(self, event: Mapping[str, str]) -> None:
        outcome = self.tracker.feed(event)
        if outcome is not None:
            self.writer.submit(outcome)

    def on_login(self) -> None:
        self.pushed = None
        self.spawn(self.after_login())

    async def after_login(self) -> None:
        await self.refresh()
        await self.reconcile()
        for callback in self.after_reconcile:
            await callback()

    async def active_call_ids(self) -> set[str]:
        return {call_id_for(linkedid) for linkedid in await self.active_linkedids()}

    async def run_refresh(self) -> None:
        """Keep the routing table and AstDB's fallback routes equal to the database, whoever
        changed the routes (admin UI, CLI, another appliance sharing the database)."""
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("routing refresh failed; keeping the previous table")

    async def refresh(self) -> None:
        self.table = await asyncio.to_thread(self.store.routing_table)
        if self.ami.is_connected and self.table.astdb != self.pushed:
            await self.push_fallback(self.table.astdb)

    async def push_fallback(self, families: dict[str, dict[str, str]]) -> None:
        for family, entries in families.items():
            try:
                await self.ami.action({"Action": "DBDelTree", "Family": family})
            except AmiError:
                pass  # nothing to delete yet
            for key, value in entries.items():
                await self.ami.action(
                    {"Action": "DBPut", "Family": family, "Key": key, "Val": value}
                )
        self.pushed = families
        log.info("fallback routes in Asterisk updated (%d keys)", sum(map(len, families.values())))

    # live calls ------------------------------------------------------------------------
    def live_channel(self, call_id: str) -> str:
        for linkedid in list(self.tracker.calls):
            if call_id_for(linkedid) == call_id:
                channel = self.tracker.channel(linkedid)
                if channel:
                    return channel
        raise CallNotLive(call_id)

    async def pause_recording(self, call_id: str, paused: bool) -> None:
        """Mute both directions of the call's recording (e.g. while a card number is read)."""
        await self.ami.action(
            {
                "Action": "MixMonitorMute",
                "Channel": self.live_channel(call_id),
                "Direction": "both",
                "State": "1" if paused else "0",
            }
        )

    async def start_recording(self, call_id: str, spool_dir: str) -> None:
        """Start recording a live call on demand, into the spool like any recording."""
        if not is_call_id(call_id):
            raise CallNotLive(call_id)
        base = f"{spool_dir.rstrip('/')}/{call_id}"
        await self.ami.action(
            {
                "Action": "MixMonitor",
                "Channel": self.live_channel(call_id),
                "File": f"{base}.raw",
                "Options": "D",
                "Command": f"/bin/touch {base}.done",
            }
        )

    # reconciliation --------------------------------------------------------------------
    async def active_linkedids(self) -> set[str]:
        response = await self.ami.action({"Action": "CoreShowChannels"})
        messages = response if isinstance(response, list) else [response]
        return {m.get("Linkedid") for m in messages if m.get("Linkedid")}

    async def reconcile(self) -> int:
        """Record every finished call in Asterisk's CDRs that the database does not have."""
        try:
            active = await self.active_linkedids()
        except AmiError as exc:
            log.warning("reconciliation postponed: %s", exc)
            return 0
        try:
            text = await asyncio.to_thread(self.cdr_file.read_text, "utf-8", "replace")
        except FileNotFoundError:
            text = ""
        rows, bad = cdr.parse(text)
        if bad:
            log.warning("%d malformed CDR line(s) in %s skipped", bad, self.cdr_file)
        candidates = {r.linkedid for r in rows} - active
        finished = await asyncio.to_thread(self.store.finished_linkedids, sorted(candidates))
        missing = cdr.outcomes(r for r in rows if r.linkedid in candidates - finished)
        for outcome in missing:
            self.writer.submit(outcome)
        if missing:
            log.info("reconciled %d call(s) from Asterisk's CDRs", len(missing))
        return len(missing)
