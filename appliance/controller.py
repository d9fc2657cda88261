"""The one place that wires everything into one asyncio process: AMI, FastAGI and HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
from collections.abc import Awaitable
from pathlib import Path

from aiohttp import web

from appliance.asterisk.ami import AmiClient
from appliance.asterisk.fastagi import FastAgiServer
from appliance.calls.inbound import InboundHandler
from appliance.calls.service import CallPath
from appliance.calls.store import CallStore
from appliance.calls.writer import CallWriter
from appliance.config import Config, ConfigError, key_passphrase, resolve_secret
from appliance.db import engine as db
from appliance.db.migrate import current_revision, head_revision
from appliance.recordings.limits import RetentionJob
from appliance.recordings.spool import SpoolSweeper
from appliance.recordings.vault import RecordingVault
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

    @property
    def cdr_file(self) -> Path:
        return self.config.asterisk_dir_on_host / "log" / "cdr-custom" / "appliance.csv"

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
        self.check_database()
        secret = resolve_secret("ami.secret", self.config.ami.secret)
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(self.engine.dispose)
            ami = AmiClient(
                self.config.ami.host,
                self.config.ami.port,
                self.config.ami.username,
                secret,
                self.config.ami.max_backoff,
            )
            stack.push_async_callback(ami.close)
            agi = FastAgiServer({}, self.config.agi.request_timeout)
            writer = CallWriter(self.store, busy=lambda: agi.in_flight > 0)
            calls = CallPath(self.store, writer, ami, self.cdr_file)
            stack.push_async_callback(writer.flush)
            stack.push_async_callback(calls.close)
            await calls.refresh()
            calls.spawn(calls.run_refresh())
            calls.spawn(writer.run())

            vault = RecordingVault(
                self.store.sessions,
                Path(self.config.recordings.store_dir),
                Path(self.config.recordings.key_file),
                key_passphrase(self.config),
            )
            sweeper = SpoolSweeper(vault, self.config.spool_on_host, calls.active_call_ids)
            calls.after_reconcile.append(sweeper.sweep_orphans)
            calls.spawn(sweeper.run())
            calls.spawn(RetentionJob(self.store.sessions, vault).run())

            agi.handlers["inbound"] = InboundHandler(writer, lambda: calls.table)
            await _listen(
                "agi.port",
                self.config.agi.host,
                self.config.agi.port,
                agi.start(self.config.agi.host, self.config.agi.port),
            )
            stack.push_async_callback(agi.close)

            checks = {
                "ami": lambda: ami.is_connected,
                "database": self.database_ok,
                "recordings": lambda: sweeper.healthy,
            }
            app = init_app(checks)
            live = api.LiveControl(calls, self.config.recordings.spool_dir)
            api.add_routes(app, self.store.sessions, vault, live)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            ssl_context = server_context(self.config.data_dir) if self.config.http.tls else None
            site = web.TCPSite(
                runner, self.config.http.host, self.config.http.port, ssl_context=ssl_context
            )
            await _listen("http.port", self.config.http.host, self.config.http.port, site.start())

            ami.start()
            log.info(
                "controller ready: FastAGI %s:%s, HTTP%s %s:%s",
                self.config.agi.host,
                self.config.agi.port,
                "S" if ssl_context else "",
                self.config.http.host,
                self.config.http.port,
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
