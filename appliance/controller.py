"""The one place that wires everything into one asyncio process: AMI, FastAGI and HTTP.

Calls do not pass through here: Asterisk routes them with the compiled dialplan. The
controller keeps that dialplan equal to the database, follows calls over AMI, records them,
reconciles what it missed, seals recordings, and answers the dynamic routes and the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
from collections.abc import Awaitable
from pathlib import Path

from aiohttp import web

from appliance import sdnotify
from appliance.asterisk import render
from appliance.asterisk.ami import AmiClient
from appliance.asterisk.fastagi import FastAgiServer
from appliance.calls.dynamic import DynamicRoute
from appliance.calls.follow import CallFollower
from appliance.calls.publish import DialplanPublisher
from appliance.calls.reconcile import Reconciler
from appliance.calls.store import CallStore
from appliance.calls.writer import CallWriter
from appliance.config import Config, ConfigError, key_passphrase, resolve_secret
from appliance.db import engine as db
from appliance.db.migrate import current_revision, head_revision
from appliance.events import EventBus
from appliance.recordings.limits import RetentionJob
from appliance.recordings.live import LiveRecordings, record_code
from appliance.recordings.spool import SpoolSweeper
from appliance.recordings.vault import RecordingVault
from appliance.supervisor import Supervisor
from appliance.tls import server_context
from appliance.web import api
from appliance.web.app import init_app

log = logging.getLogger(__name__)

EXIT_AMI_AUTH = 3


class StartupError(Exception):
    """The controller cannot start; the message says what to fix."""


async def _listen(what: str, host: str, port: int, start: Awaitable[None]) -> None:
    try:
        await start
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"{what}: port {port} on {host} is already in use") from None
        raise StartupError(f"{what}: cannot listen on {host}:{port}: {exc.strerror}") from None


class Controller:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.engine = db.make_engine(config.database.url)
        self.store = CallStore(db.session_factory(self.engine))

    def check_database(self) -> None:
        try:
            db.ping(self.engine)
            current = current_revision(self.engine)
        except Exception as exc:
            raise StartupError(f"database.url: cannot reach the database ({exc})") from None
        if current != head_revision():
            raise StartupError("database is not migrated (run 'appliance migrate')")

    async def database_ok(self) -> bool:
        try:
            await asyncio.to_thread(db.ping, self.engine)
        except Exception:
            return False
        return True

    async def run(self, stop: asyncio.Event) -> int:
        """Start everything, wait for stop (or a refused AMI login), shut down in order."""
        config = self.config
        self.check_database()
        secret = resolve_secret("ami.secret", config.ami.secret)
        asterisk = {0, render.asterisk_uid(config)}  # root, or Asterisk's own user
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(self.engine.dispose)
            bus = EventBus()
            ami = AmiClient(
                config.ami.host,
                config.ami.port,
                config.ami.username,
                secret,
                allowed_uids=asterisk,
                max_backoff=config.ami.max_backoff,
            )
            stack.push_async_callback(ami.close)
            writer = CallWriter(self.store, bus)
            stack.push_async_callback(writer.flush)
            tasks = Supervisor()
            stack.push_async_callback(tasks.close)
            tasks.spawn("systemd watchdog", sdnotify.watchdog())

            calls = CallFollower(writer)
            ami.handlers.append(calls.on_event)
            routes = DialplanPublisher(
                self.store, render.routes_path(config), render.dialplan_settings(config), ami
            )
            await routes.refresh()
            reconciler = Reconciler(
                self.store,
                writer,
                config.asterisk_dir_on_host / render.CDR_DIR,
                ami.active_linkedids,
            )
            vault = RecordingVault(
                self.store.sessions,
                Path(config.recordings.store_dir),
                Path(config.recordings.key_file),
                key_passphrase(config),
                spool_owners={render.asterisk_uid(config)},
            )
            sweeper = SpoolSweeper(vault, config.spool_on_host, ami.active_linkedids, bus)
            live = LiveRecordings(self.store, calls, ami, record_code(secret))
            ami.handlers.append(live.on_event)

            async def after_login() -> None:
                await routes.on_login()
                await reconciler.reconcile()
                await sweeper.sweep_orphans()

            ami.on_login.append(lambda: tasks.spawn("after AMI login", after_login()))
            tasks.spawn("call writer", writer.run())
            tasks.spawn("routing refresh", routes.run())
            tasks.spawn("reconciliation", reconciler.run())
            tasks.spawn("spool sweeper", sweeper.run())
            tasks.spawn("recording limits", RetentionJob(self.store.sessions, vault).run())

            agi = FastAgiServer(
                {"route": DynamicRoute(lambda: routes.table)},
                config.agi.request_timeout,
                allowed_uids=asterisk,
            )
            await _listen(
                "agi.port",
                config.agi.host,
                config.agi.port,
                agi.start(config.agi.host, config.agi.port),
            )
            stack.push_async_callback(agi.close)

            checks = {
                "ami": lambda: ami.is_connected,
                "database": self.database_ok,
                "recordings": lambda: sweeper.healthy,
                "routes": lambda: routes.healthy,
            }
            counters = lambda: {  # noqa: E731 - read at every /health request
                "ami_logins": ami.logins,
                "ami_impostors": ami.impostors,
                "agi_answered": agi.answered,
                "agi_refused": agi.refused,
                "dialplan_reloads": routes.reloads,
                "reconciled_calls": reconciler.reconciled,
                "spool_refused": sweeper.refused,
            }
            app = init_app(checks, counters)
            api.add_routes(app, self.store.sessions, vault, live)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            ssl_context = server_context(config.data_dir) if config.http.tls else None
            site = web.TCPSite(runner, config.http.host, config.http.port, ssl_context=ssl_context)
            await _listen("http.port", config.http.host, config.http.port, site.start())

            ami.start()
            sdnotify.ready()
            log.info(
                "controller ready: FastAGI %s:%s, HTTP%s %s:%s",
                config.agi.host,
                config.agi.port,
                "S" if ssl_context else "",
                config.http.host,
                config.http.port,
            )
            waiters = {
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(ami.auth_failed.wait()),
            }
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            sdnotify.stopping()
            log.info("controller stopping")
            return EXIT_AMI_AUTH if ami.auth_failed.is_set() else 0
        return 0


async def serve(config: Config) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await Controller(config).run(stop)
    except (StartupError, ConfigError) as exc:
        log.error("%s", exc)
        return 2
