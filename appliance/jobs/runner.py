"""Runs jobs of some kinds: claims them, does each in one transaction together with marking it
done, and records failures (retried with backoff, or parked). The controller runs one for its
own jobs; worker processes run one each for theirs."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from appliance.jobs import queue

log = logging.getLogger(__name__)

Quick = Callable[[Session, str], object]  # does the work about `key` in the session given


@dataclass(frozen=True)
class Slow:
    """Work too long for one transaction (a transcription): `work(key)` runs outside any,
    while the worker keeps renewing its lease; `save(session, key, result)` then stores the
    result in the transaction that marks the job done."""

    work: Callable[[str], Any]
    save: Callable[[Session, str, Any], object]


Handler = Quick | Slow


def worker_name(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}"[:64]


class Runner:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        handlers: Mapping[str, Handler],
        worker: str,
        lease: float = 300.0,
        batch: int = 10,
        time_limit: float | None = None,
        overrun: Callable[[], object] | None = None,
    ) -> None:
        self.db = sessions
        self.handlers = dict(handlers)
        self.worker = worker
        self.lease = lease
        self.batch = batch
        # slow work that runs longer fails (tried again later) and `overrun` is called: a
        # worker process that cannot interrupt its work (a decoder in C) ends itself there
        self.time_limit = time_limit
        self.overrun = overrun
        self.done = 0
        self.failed = 0

    async def run(self, every: float = 1.0) -> None:
        while True:
            try:
                claimed = await asyncio.to_thread(self.claim)
                for job in claimed:
                    await asyncio.to_thread(self.execute, job)
            except Exception:
                log.exception("the job runner failed; trying again")
                claimed = []
            if len(claimed) < self.batch:
                await asyncio.sleep(every)

    def claim(self) -> list[queue.Claimed]:
        with self.db.begin() as session:
            return queue.claim(session, self.handlers, self.worker, self.lease, time.time(),
                               self.batch)  # fmt: skip

    def drain(self, stop: threading.Event) -> int:
        """Claim and do due jobs until there are none (or `stop` is set); how many were tried."""
        tried = 0
        while not stop.is_set():
            claimed = self.claim()
            for job in claimed:
                self.execute(job)
            tried += len(claimed)
            if len(claimed) < self.batch:
                break
        return tried

    def execute(self, job: queue.Claimed) -> bool:
        """Do one claimed job; whether it is done."""
        try:
            handler = self.handlers[job.kind]
            if isinstance(handler, Slow):
                result = self._holding(job, handler.work)
                with self.db.begin() as session:
                    handler.save(session, job.key, result)
                    queue.finish(session, job.id, self.worker, time.time())
            else:
                with self.db.begin() as session:
                    handler(session, job.key)
                    queue.finish(session, job.id, self.worker, time.time())
        except queue.LeaseLost:
            log.warning("job %s (%s %s) was taken over; its work here is undone", job.id,
                        job.kind, job.key)  # fmt: skip
            return False
        except InterruptedError:  # the worker is stopping: someone does it later
            with self.db.begin() as session:
                queue.release(session, job.id, self.worker)
            return False
        except Exception as exc:
            final = isinstance(exc, queue.Permanent)
            reason = str(exc) if final else f"{type(exc).__name__}: {exc}"
            with self.db.begin() as session:
                state = queue.fail(session, job.id, self.worker, reason, time.time(), final)
            self.failed += 1
            log_at = log.error if state == "parked" else log.warning
            log_at("job %s (%s %s) failed (%s): %s", job.id, job.kind, job.key, state, reason)
            return False
        self.done += 1
        return True

    def _holding(self, job: queue.Claimed, work: Callable[[str], Any]) -> Any:
        """`work(job.key)`, renewing the job's lease every third of it from another thread."""
        done = threading.Event()
        started = time.monotonic()

        def renew() -> None:
            while not done.wait(self.lease / 3):
                if self.time_limit is not None and time.monotonic() - started > self.time_limit:
                    reason = f"took longer than {self.time_limit:.0f} s; its worker was stopped"
                    with self.db.begin() as session:
                        queue.fail(session, job.id, self.worker, reason, time.time())
                    log.error("job %s (%s %s) %s", job.id, job.kind, job.key, reason)
                    if self.overrun is not None:
                        self.overrun()
                    return
                try:
                    with self.db.begin() as session:
                        queue.extend(session, job.id, self.worker, self.lease, time.time())
                except queue.LeaseLost:
                    return  # finishing will say so
                except Exception:
                    log.exception("renewing the lease of job %s failed; trying again", job.id)

        renewer = threading.Thread(target=renew, name=f"lease-{job.id}", daemon=True)
        renewer.start()
        try:
            return work(job.key)
        finally:
            done.set()
            renewer.join()
