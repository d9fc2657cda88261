"""What the long-running processes (the controller, the tracking listener) share when they
start: refusing to run on a database that is not migrated, binding a port with a message an
admin can act on, yielding the CPUs to Asterisk, and a bounded log of event-loop errors."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Awaitable
from typing import Any

from sqlalchemy.engine import Engine

from appliance.db import engine as db
from appliance.db.migrate import current_revision, head_revision
from appliance.web.listener import Quieted

log = logging.getLogger(__name__)
NICENESS = 10  # calls first: Asterisk wins the CPUs whenever both want them


class StartupError(Exception):
    """The process cannot start; the message says what to fix."""


def check_migrated(engine: Engine) -> None:
    try:
        db.ping(engine)
        current = current_revision(engine)
    except Exception as exc:
        raise StartupError(f"database.url: cannot reach the database ({exc})") from None
    if current != head_revision():
        raise StartupError("database is not migrated (run 'appliance migrate')")


async def listen(what: str, host: str, port: int, start: Awaitable[None]) -> None:
    try:
        await start
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"{what}: port {port} on {host} is already in use") from None
        raise StartupError(f"{what}: cannot listen on {host}:{port}: {exc.strerror}") from None


def lower_priority() -> None:
    """Below Asterisk, unless already there (the unit's Nice=, whose seccomp filter refuses
    setpriority)."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if current < NICENESS:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, NICENESS)
        except PermissionError:
            log.warning("cannot lower the CPU priority (set Nice=%d)", NICENESS)


def bound_loop_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Errors the event loop reports itself (a failed accept on a server asyncio runs, an
    exception nobody retrieved) are logged at most once per ten seconds per kind, so that a
    flood cannot fill the disk with them."""
    kinds: dict[str, Quieted] = {}

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", "event loop error"))
        if len(kinds) > 100:  # messages that differ each time: start again
            kinds.clear()
        skipped = kinds.setdefault(message, Quieted()).due()
        if skipped is None:
            return
        if skipped:
            context = {**context, "message": f"{message} ({skipped} more not logged)"}
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
