"""The spool sweeper: seals every finished recording Asterisk left in the spool, and at start
every recording a crash left behind. Plaintext stays in the spool until it is sealed: a missing
key file or a full disk keeps it there (and says so) rather than lose it."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from appliance.calls.store import call_id_for
from appliance.recordings.vault import CallNotRecordedYet, RecordingVault

log = logging.getLogger(__name__)

# <call id>.raw from the controller's routes; L<linkedid>.raw from the static fallback route.
_NAME = re.compile(r"^(?:([0-9a-f]{32})|L([0-9]{1,20}\.[0-9]{1,10}))\.raw$")
REPEAT_ERRORS_AFTER = 60.0


class SpoolSweeper:
    def __init__(
        self,
        vault: RecordingVault,
        spool: Path,
        active_calls: Callable[[], Awaitable[set[str]]],
        interval: float = 1.0,
    ) -> None:
        self.vault = vault
        self.spool = spool
        self.active_calls = active_calls
        self.interval = interval
        self.failing: dict[str, float] = {}

    @property
    def healthy(self) -> bool:
        return not self.failing

    async def run(self) -> None:
        while True:
            await self.sweep()
            await asyncio.sleep(self.interval)

    async def sweep(self) -> int:
        """Seal finished recordings; return how many were sealed."""
        finished = [p.with_suffix(".raw") for p in self._list("*.done")]
        return await self._seal_all([p for p in finished if p.exists()])

    async def sweep_orphans(self) -> int:
        """At start: recordings without a completion marker whose call is over (a crash of
        Asterisk or of the controller mid-call) are sealed as they are."""
        active = await self.active_calls()
        orphans = [
            p
            for p in self._list("*.raw")
            if not p.with_suffix(".done").exists() and _call_id(p) not in active
        ]
        sealed = await self._seal_all(orphans)
        if orphans:
            log.warning("sealed %d recording(s) left in the spool by an interrupted call", sealed)
        return sealed

    def _list(self, pattern: str) -> list[Path]:
        try:
            return sorted(self.spool.glob(pattern))
        except OSError as exc:
            log.error("recording spool %s unreadable: %s", self.spool, exc)
            return []

    async def _seal_all(self, files: list[Path]) -> int:
        sealed = 0
        for path in files:
            call_id = _call_id(path)
            if call_id is None:
                continue
            try:
                result = await asyncio.to_thread(self.vault.seal, path, call_id)
            except CallNotRecordedYet:
                continue  # the call record is on its way; next sweep
            except Exception as exc:
                self._failed(call_id, exc)
                continue
            self.failing.pop(call_id, None)
            sealed += 1
            log.info("recording of call %s sealed (%.1f s of audio)", call_id, result.seconds)
        return sealed

    def _failed(self, call_id: str, exc: Exception) -> None:
        now = time.monotonic()
        last = self.failing.get(call_id)
        if last is None or now - last >= REPEAT_ERRORS_AFTER:
            self.failing[call_id] = now
            log.error(
                "ALERT recording of call %s cannot be sealed, plaintext kept in the spool: %s",
                call_id,
                exc,
            )


def _call_id(path: Path) -> str | None:
    match = _NAME.match(path.name)
    if match is None:
        return None
    return match.group(1) or call_id_for(match.group(2))
