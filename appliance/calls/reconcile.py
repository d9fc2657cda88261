"""Reconciliation with Asterisk's own CDRs: no call goes unlogged, and the CDR file is no
second call log.

Asterisk appends every finished call leg to appliance.csv. After every AMI (re)connect and
every minute, the file is moved aside (Asterisk starts a new one with its next line), every
finished call in it that the database lacks is recorded, and the moved file is deleted once
all its calls are in the database. Rows of calls still in progress keep their file for the
next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from appliance.calls import cdr
from appliance.calls.store import CallStore
from appliance.calls.writer import CallWriter

log = logging.getLogger(__name__)

CDR_FILE = "appliance.csv"


class Reconciler:
    def __init__(
        self,
        store: CallStore,
        writer: CallWriter,
        cdr_dir: Path,
        active_linkedids: Callable[[], Awaitable[set[str]]],
        interval: float = 60.0,
    ) -> None:
        self.store = store
        self.writer = writer
        self.cdr_dir = cdr_dir
        self.active_linkedids = active_linkedids
        self.interval = interval
        self.lock = asyncio.Lock()
        self.reconciled = 0  # calls recorded from CDRs since start

    async def reconcile(self) -> int:
        """Record the finished calls the database lacks; return how many."""
        async with self.lock:
            try:
                active = await self.active_linkedids()
            except Exception as exc:  # AMI away: the next pass will do
                log.warning("reconciliation postponed: %s", exc)
                return 0
            files = await asyncio.to_thread(self._rotate)
            texts = {path: await asyncio.to_thread(_read, path) for path in files}
            rows_by_file = {path: _rows(path, text) for path, text in texts.items()}
            rows = [row for file_rows in rows_by_file.values() for row in file_rows]
            candidates = {row.linkedid for row in rows} - active
            done = await asyncio.to_thread(self.store.finished_linkedids, sorted(candidates))
            missing = cdr.outcomes(r for r in rows if r.linkedid in candidates - done)
            if missing:
                await self.writer.write(missing)
                log.info("reconciled %d call(s) from Asterisk's CDRs", len(missing))
            recorded = done | {outcome.linkedid for outcome in missing}
            for path, file_rows in rows_by_file.items():
                if {row.linkedid for row in file_rows} <= recorded:
                    path.unlink(missing_ok=True)
            self.reconciled += len(missing)
            return len(missing)

    def _rotate(self) -> list[Path]:
        """Move the live file aside (Asterisk opens it afresh for each line) and list every
        file moved aside so far, oldest first."""
        with contextlib.suppress(FileNotFoundError):
            os.rename(self.cdr_dir / CDR_FILE, self.cdr_dir / f"{CDR_FILE}.{time.time_ns()}")
        return sorted(self.cdr_dir.glob(f"{CDR_FILE}.*"))


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _rows(path: Path, text: str) -> list[cdr.CdrRow]:
    rows, bad = cdr.parse(text)
    if bad:
        log.warning("%d malformed CDR line(s) in %s skipped", bad, path.name)
    return rows
