"""The public tracking listener (`appliance track`), alone in its process: the one listener
meant for the internet gets its own event loop, descriptors and memory, so that whatever a
flood of website clients does to it, the controller (admin UI, FastAGI, AMI, sealing, the
outbox) does not notice. It shares only the database with the controller: visits, holds
and leads go there, and calls are attributed from there (attribution/attribute.py).

Its counters are written to {data_dir}/tracking.json every few seconds for the controller's
/health and `appliance doctor` (appliance/tracking_status.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal

from aiohttp import web

from appliance import sdnotify, tracking_status
from appliance.attribution.dni import Dni
from appliance.config import Config, ConfigError
from appliance.db import engine as db
from appliance.forwarded import is_proxy, parse_proxies
from appliance.startup import (
    StartupError,
    bound_loop_errors,
    check_migrated,
    listen,
    lower_priority,
)
from appliance.supervisor import Supervisor
from appliance.tls import server_context
from appliance.web.listener import GuardedListener, limits_for
from appliance.web.tracking import tracking_app

log = logging.getLogger(__name__)
STATUS_EVERY = 2.0  # seconds between two writes of the status file
RESERVE = 256  # descriptors kept for the database, the log and the status file


class PublicListener:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.engine = db.make_engine(config.database.url)
        tracking = config.tracking
        self.dni = Dni(db.session_factory(self.engine), tracking)
        self.listener: GuardedListener | None = None

    def counters(self) -> dict[str, int]:
        sites = self.dni.sites.values()
        counted = {
            "dni_sites": len(sites),
            "dni_pool_exhausted": sum(s.pool.exhausted for s in sites),
        }
        if self.listener is not None:
            counted |= {f"tracking_{k}": v for k, v in self.listener.counters().items()}
        return counted

    async def run(self, stop: asyncio.Event) -> int:
        config, tracking = self.config, self.config.tracking
        check_migrated(self.engine)
        limits = limits_for(
            "tracking listener",
            tracking.max_connections,
            tracking.connections_per_network,
            tracking.timeout,
            RESERVE,
            is_proxy=functools.partial(is_proxy, proxies=parse_proxies(tracking.trusted_proxies)),
        )
        ssl_context = server_context(config.data_dir) if tracking.tls else None
        app = tracking_app(self.dni, tracking)
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=limits.idle)
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(self.engine.dispose)
            tasks = Supervisor()
            stack.push_async_callback(tasks.close)
            stack.push_async_callback(self.dni.flush)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            self.listener = GuardedListener(runner, limits, ssl_context)
            await listen("tracking.port", tracking.host, tracking.port,
                         self.listener.start(tracking.host, tracking.port))  # fmt: skip
            stack.push_async_callback(self.listener.close)
            tasks.spawn("systemd watchdog", sdnotify.watchdog())
            tasks.spawn("visit writer", self.dni.run())
            tasks.spawn("status file", self.write_status())
            sdnotify.ready()
            log.info("tracking listener ready on %s:%d", tracking.host, self.listener.port)
            await stop.wait()
            sdnotify.stopping()
            log.info("tracking listener stopping")
        return 0

    async def write_status(self) -> None:
        while True:
            try:
                tracking_status.write(self.config, self.counters(), os.getpid())
            except OSError as exc:
                log.warning("%s cannot be written: %s", tracking_status.path(self.config), exc)
            await asyncio.sleep(STATUS_EVERY)


async def serve(config: Config) -> int:
    if not config.tracking.enabled:
        log.info("tracking.enabled is off: no tracking listener to run")
        return 0
    lower_priority()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    bound_loop_errors(loop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await PublicListener(config).run(stop)
    except (StartupError, ConfigError) as exc:
        log.error("%s", exc)
        return 2
