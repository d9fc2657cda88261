"""The spool sweeper: seals every finished recording Asterisk left in the spool, and at start
every recording a crash left behind. Plaintext stays in the spool until it is sealed: a missing
key file or a full disk keeps it there (and says so) rather than lose it.

Entries are found by name only (spool_files: `L<linkedid>.raw`, its marker `L<linkedid>.done`;
other names are ignored), markers are only ever looked at with lstat, and every spool file goes
through RecordingVault.seal, which opens nothing it cannot open without blocking. An entry the
vault refuses and removes (symlink, FIFO, device, directory, hard link, wrong owner, second file
for a sealed call) is logged as a warning; one it keeps (over the size cap) raises the ALERT
and makes the sweeper unhealthy until it is gone. One bad entry never stops the others."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from appliance.events import EventBus, RecordingFailed, RecordingSealed
from appliance.recordings import spool_files
from appliance.recordings.vault import CallNotRecordedYet, RecordingVault, SpoolFileRefused

log = logging.getLogger(__name__)

REPEAT_ERRORS_AFTER = 60.0


class SpoolSweeper:
    def __init__(
        self,
        vault: RecordingVault,
        spool: Path,
        active_calls: Callable[[], Awaitable[set[str]]],
        bus: EventBus | None = None,
        interval: float = 1.0,
    ) -> None:
        """`active_calls` returns the linkedids of the calls in progress."""
        self.vault = vault
        self.spool = spool
        self.active_calls = active_calls
        self.bus = bus or EventBus()
        self.interval = interval
        self.failing: dict[str, float] = {}  # linkedid -> when its ALERT was last logged
        self.refused = 0  # spool entries refused since start
        # refused but kept in the spool: linkedid -> ((st_dev, st_ino), reason)
        self._held: dict[str, tuple[tuple[int, int], str]] = {}
        self._stuck_markers: set[str] = set()  # stale markers that could not be removed
        self._lock = asyncio.Lock()

    @property
    def healthy(self) -> bool:
        return not self.failing

    async def run(self) -> None:
        while True:
            await self.sweep()
            await asyncio.sleep(self.interval)

    async def sweep(self) -> int:
        """Seal finished recordings; return how many were sealed."""
        async with self._lock:
            raws, markers = self._scan()
            for linkedid in sorted(markers - raws - self._stuck_markers):
                self._remove_marker(linkedid)  # left by a run interrupted after sealing
            return await self._seal_all(sorted(markers & raws))

    async def sweep_orphans(self) -> int:
        """At start: recordings without a completion marker whose call is over (a crash of
        Asterisk or of the controller mid-call) are sealed as they are."""
        active = await self.active_calls()
        async with self._lock:
            raws, markers = self._scan()
            orphans = sorted(raws - markers - set(active))
            sealed = await self._seal_all(orphans)
        if orphans:
            log.warning("sealed %d recording(s) left in the spool by an interrupted call", sealed)
        return sealed

    def _scan(self) -> tuple[set[str], set[str]]:
        """Linkedids of the recordings and of the markers in the spool, by name alone."""
        try:
            with os.scandir(self.spool) as entries:
                names = [entry.name for entry in entries]
        except OSError as exc:
            log.error("recording spool %s unreadable: %s", self.spool, exc)
            return set(), set()
        raws: set[str] = set()
        markers: set[str] = set()
        for name in names:
            parsed = spool_files.parse(name)
            if parsed is not None:
                (raws if parsed.kind == "raw" else markers).add(parsed.linkedid)
        for linkedid in set(self.failing) - raws:  # gone (an admin removed it): healthy again
            self._forget(linkedid)
        return raws, markers

    async def _seal_all(self, linkedids: list[str]) -> int:
        sealed = 0
        for linkedid in linkedids:
            path = self.spool / spool_files.raw_name(linkedid)
            held = self._still_held(linkedid, path)
            if held is not None:
                self._failed(linkedid, held)
                continue
            try:
                result = await asyncio.to_thread(self.vault.seal, path, linkedid)
            except CallNotRecordedYet:
                continue  # the call record is on its way; next sweep
            except SpoolFileRefused as refusal:
                self.refused += 1
                self.bus.emit(RecordingFailed(linkedid, "refused"))
                if refusal.removed:
                    self._forget(linkedid)
                    log.warning("spool file %s refused and removed: %s", path.name, refusal.reason)
                else:
                    why = f"refused: {refusal.reason}"
                    if refusal.identity is not None:
                        self._held[linkedid] = (refusal.identity, why)
                    self._failed(linkedid, why)
                continue
            except Exception as exc:
                if isinstance(exc, FileNotFoundError) and await _gone(path):
                    self._forget(linkedid)  # gone while we looked
                else:
                    if linkedid not in self.failing:  # once, not at every sweep
                        self.bus.emit(RecordingFailed(linkedid, "error"))
                    self._failed(linkedid, str(exc))
                continue
            self._forget(linkedid)
            sealed += 1
            log.info(
                "recording of call %s sealed (%.1f s of audio)", result.call_id, result.seconds
            )
            latency = max(0.0, time.time() - result.written_at)
            self.bus.emit(RecordingSealed(result.call_id, linkedid, result.seconds, latency))
        return sealed

    def _still_held(self, linkedid: str, path: Path) -> str | None:
        """A kept refusal is not examined (nor audited) again while the same entry is there:
        the reason it was refused, or None."""
        held = self._held.get(linkedid)
        if held is None:
            return None
        try:
            seen = os.lstat(path)
        except OSError:
            seen = None
        if seen is not None and (seen.st_dev, seen.st_ino) == held[0]:
            return held[1]
        del self._held[linkedid]
        return None

    def _forget(self, linkedid: str) -> None:
        self.failing.pop(linkedid, None)
        self._held.pop(linkedid, None)

    def _failed(self, linkedid: str, why: str) -> None:
        now = time.monotonic()
        last = self.failing.get(linkedid)
        if last is None or now - last >= REPEAT_ERRORS_AFTER:
            self.failing[linkedid] = now
            log.error(
                "ALERT recording of call %s cannot be sealed, plaintext kept in the spool: %s",
                linkedid,
                why,
            )

    def _remove_marker(self, linkedid: str) -> None:
        """A marker whose recording is gone: removed without being opened (lstat only)."""
        path = self.spool / spool_files.done_name(linkedid)
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                os.rmdir(path)
            else:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._stuck_markers.add(linkedid)
            log.warning("spool marker %s not removed: %s", path.name, exc)


async def _gone(path: Path) -> bool:
    """Nothing is at path any more, not even a dangling link (an lstat, off the event loop)."""
    return not await asyncio.to_thread(os.path.lexists, path)
