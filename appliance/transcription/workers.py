"""`appliance transcribe`: a parent process that keeps N transcription workers running (its own
systemd unit). Each worker is a process of its own that takes one transcription job at a time
from the database, so workers on several hosts can share the queue on PostgreSQL; it decrypts
the recording and hands the audio to its decoder, a child process that loaded the model once
and can write nothing (appliance/transcription/decoder.py). With no model installed the
parent waits for one; calls are recorded meanwhile."""

from __future__ import annotations

import ctypes
import functools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess

from appliance.config import Config
from appliance.db.engine import make_engine, session_factory
from appliance.jobs.runner import Runner, worker_name
from appliance.transcription import service
from appliance.transcription.decoder import DecoderError

log = logging.getLogger(__name__)

IDLE = 2.0  # seconds an idle worker waits before looking for jobs again
MODEL_WAIT = 10.0  # seconds between looks for an installed model
PR_SET_PDEATHSIG = 1  # prctl(2)
STOP_WAIT = 45.0  # seconds all workers get to stop, within the unit's TimeoutStopSec=60
RESTART = (2.0, 60.0)  # first and longest wait before a worker that died is started again


def _stop_on_signals(stop: threading.Event) -> None:
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())


def _die_with(parent: int) -> None:
    """A worker spawned by `serve` stops when its parent does, however the parent ended."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # the parent is also checked while idle
    if os.getppid() != parent:  # it ended before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def work(config: Config, stop: threading.Event | None = None, parent: int | None = None) -> None:
    """One worker process: load the model, then do transcription jobs until told to stop (or,
    when `parent` is given, until that process is gone)."""
    if stop is None:
        stop = threading.Event()
        _stop_on_signals(stop)
    if parent is not None:
        _die_with(parent)
    _logging(config)
    model = service.chosen_model(config)
    if model is None:
        log.warning("worker not started: %s", service.off_reason(config))
        return
    engine = make_engine(config.database.url)
    sessions = session_factory(engine)
    transcriber = service.Transcriber(config, sessions, model)
    transcriber.stopping = stop
    try:
        transcriber.decoder.start()  # the model loads in the decoder, which locks itself
    except DecoderError as exc:
        log.error("transcription worker not started: %s", exc)
        engine.dispose()
        return
    runner = Runner(
        sessions,
        {service.KIND: transcriber.handler},
        worker_name("transcriber"),
        lease=config.transcription.lease,
        batch=1,
        time_limit=config.transcription.time_limit,
        overrun=lambda: os._exit(3),  # the decoder cannot be interrupted; the parent restarts
    )
    log.info("transcription worker ready with model %s", model.name)
    try:
        while not stop.is_set():
            try:
                tried = runner.drain(stop)
            except Exception:
                log.exception("the transcription worker failed; trying again")
                tried = 0
            if parent is not None and os.getppid() != parent:
                log.warning("the transcription service stopped; this worker stops too")
                break
            if not tried:
                stop.wait(IDLE)
    finally:
        transcriber.decoder.close()
        engine.dispose()


def serve(config: Config, count: int | None = None) -> int:
    """Keep `count` workers (default transcription.workers) running until SIGTERM."""
    stop = threading.Event()
    _stop_on_signals(stop)
    _wait_until_on(config, stop)
    count = count or service.worker_count(config)
    start = functools.partial(_start_worker, multiprocessing.get_context("spawn"), config)
    slots = [_Slot() for _ in range(count)]
    log.info("starting %d transcription worker(s)", count)
    try:
        while not stop.is_set():
            now = time.monotonic()
            for number, slot in enumerate(slots):
                slot.tend(number, now, start)
            stop.wait(1.0)
    finally:
        _stop_all([slot.process for slot in slots if slot.process is not None])
    return 0


def _wait_until_on(config: Config, stop: threading.Event) -> None:
    """Until transcription is on (a model installed) or `stop`; each reason is said once."""
    said = None
    while not stop.is_set():
        reason = service.off_reason(config)
        if reason is None:
            return
        if reason != said:
            log.warning("transcription is off: %s; waiting for that to change", reason)
            said = reason
        stop.wait(MODEL_WAIT)


def _start_worker(context: SpawnContext, config: Config) -> BaseProcess:
    started = context.Process(target=work, args=(config, None, os.getpid()), daemon=False)
    started.start()
    return started


@dataclass
class _Slot:
    """One worker's place: its process, and when and after how long the next one starts."""

    process: BaseProcess | None = None
    wait: float = RESTART[0]
    due: float = 0.0
    started_at: float = 0.0

    def tend(self, number: int, now: float, start: Callable[[], BaseProcess]) -> None:
        """Start a worker when one is due; when one stopped, set when the next is, backing
        off unless it had been working for a while."""
        process = self.process
        if process is not None and process.is_alive():
            return
        if process is not None:
            if now - self.started_at > RESTART[1]:  # it had been working: no backoff
                self.wait = RESTART[0]
            log.warning(
                "transcription worker %d stopped (exit code %s); another in %.0f s",
                number,
                process.exitcode,
                self.wait,
            )
            self.due = now + self.wait
            self.wait = min(self.wait * 2, RESTART[1])
            self.process = None
        elif now >= self.due:
            self.process, self.started_at = start(), now


def _stop_all(running: list[BaseProcess]) -> None:
    """Ask each worker to stop, then kill those still running after STOP_WAIT in all."""
    for process in running:
        process.terminate()  # each gives its job back at its next piece of audio
    deadline = time.monotonic() + STOP_WAIT
    for process in running:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _logging(config: Config) -> None:
    """A spawned worker starts with no logging set up: the same format as the CLI."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=config.log.level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
