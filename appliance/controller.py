"""The one place that wires everything into one asyncio process: AMI, FastAGI and HTTP.

Calls do not pass through here: Asterisk routes them with the compiled dialplan. The
controller keeps that dialplan equal to the database, follows calls over AMI, records them,
reconciles what it missed, seals recordings, and answers the dynamic routes and the API.
Attached to a site's own Asterisk (asterisk.mode = attached), it writes none of Asterisk's
config and reloads nothing: it follows the calls the site's dialplan hands to the FastAGI
script `track`; it neither records them nor reconciles CDRs (both need the managed dialplan).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from appliance import admin, bootstrap, outage, periodic, sdnotify, tracking_status
from appliance.asterisk import agi_port, render
from appliance.asterisk.ami import AmiClient
from appliance.asterisk.fastagi import FastAgiServer
from appliance.asterisk.registrations import REGISTERED, Registrations
from appliance.calls.dialplan import DYNAMIC_SCRIPT
from appliance.calls.dynamic import DynamicRoute
from appliance.calls.follow import CallFollower
from appliance.calls.publish import DialplanPublisher
from appliance.calls.reconcile import Reconciler
from appliance.calls.store import CallStore
from appliance.calls.writer import CallWriter
from appliance.config import Config, ConfigError, key_passphrase, resolve_secret
from appliance.conversions import store as conversions
from appliance.conversions.outbox import Outbox
from appliance.db import engine as db
from appliance.events import EventBus
from appliance.forwarded import is_proxy, parse_proxies
from appliance.integrator import agi as integrator_agi
from appliance.integrator.context import Services
from appliance.jobs import queue as jobs_queue
from appliance.jobs.runner import Runner, worker_name
from appliance.mail import AlertMail, Mailer
from appliance.metrics import Metrics
from appliance.outage import Outage
from appliance.periodic import every
from appliance.plugins import builtin
from appliance.plugins import status as plugin_status
from appliance.plugins.claims import RouteClaims
from appliance.plugins.manager import PluginManager
from appliance.plugins.sites import Decided, HookSites
from appliance.privacy import account_deletion, erasure
from appliance.privacy.retention_job import PrivacyRetention
from appliance.recordings.limits import RetentionJob
from appliance.recordings.live import LiveRecordings, record_code
from appliance.recordings.spool import SpoolSweeper
from appliance.recordings.vault import RecordingVault
from appliance.startup import (
    StartupError,
    bound_loop_errors,
    check_migrated,
    listen,
    lower_priority,
)
from appliance.supervisor import Supervisor
from appliance.tls import server_context
from appliance.transcription import analysis_store, search
from appliance.transcription import service as transcription
from appliance.web.app import init_app
from appliance.web.listener import GuardedListener, limits_for

log = logging.getLogger(__name__)

EXIT_AMI_AUTH = 3
RESERVE = 512  # descriptors kept from the admin UI: FastAGI, AMI, the database, sealing
ADMIN_TIMEOUT = 30.0  # seconds for a TLS handshake, and to send a whole request


@dataclass(frozen=True)
class Features:
    """Each feature owns one concern; the controller owns their tasks."""

    ami: AmiClient
    writer: CallWriter
    calls: CallFollower
    routes: DialplanPublisher
    reconciler: Reconciler
    vault: RecordingVault
    sweeper: SpoolSweeper
    live: LiveRecordings
    metrics: Metrics


class Controller:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.engine = db.make_engine(config.database.url)
        self.store = CallStore(
            db.session_factory(self.engine), config.tracking.grace, only_tracked=config.attached
        )
        self.plugins = PluginManager(config.plugins.timeout)
        self.http: GuardedListener | None = None  # the admin UI's, once it listens
        self.decided = Decided()  # calls whose route plugins decided at the dynamic step
        weights = analysis_store.weights(config)
        self.jobs = Runner(
            self.store.sessions,
            {
                **conversions.handlers(self.plugins),
                **analysis_store.handlers(weights, self.plugins),
            },
            worker_name("controller"),
        )

    @functools.cached_property
    def mailer(self) -> Mailer:
        smtp = self.config.smtp
        password = resolve_secret("smtp.password", smtp.password) if smtp.password else ""
        return Mailer(smtp, password)

    @functools.cached_property
    def outbox(self) -> Outbox:
        return Outbox(
            self.store.sessions, bootstrap.secret_box(self.config), self.config.destinations
        )

    @functools.cached_property
    def registrations(self) -> Registrations:
        return Registrations()

    def registration_trunks(self) -> list[tuple[str, str, int]]:
        with self.store.sessions() as session:
            return [
                (t.name, t.host, t.port) for t in admin.trunks(session) if t.kind == "registration"
            ]

    async def watch_registrations(self, every: float = 10.0) -> None:
        """ALERT when a registration trunk stays unregistered (its carrier will not send calls
        to the appliance) for a minute."""
        watches: dict[str, Outage] = {}
        while True:
            try:
                trunks = await asyncio.to_thread(self.registration_trunks)
            except Exception:
                log.exception("registration watch: trunks unreadable")
                trunks = []
            for name, host, port in trunks:
                state = self.registrations.state_of(host, port)
                watch = watches.setdefault(
                    name, Outage(f"trunk {name}: not registered with its carrier")
                )
                up = state is None or state.status == REGISTERED
                said = watch.feed(up, time.monotonic())
                if said is not None and state is not None:
                    (log.error if said.startswith("ALERT") else log.warning)(
                        "%s (%s %s)", said, state.status, state.cause
                    )
            await asyncio.sleep(every)

    def pjsip_sections(self) -> str:
        """The trunks and phones in the database, as PJSIP sections (passwords unsealed)."""
        box = bootstrap.secret_box(self.config)
        with self.store.sessions() as session:
            trunks = admin.trunk_views(session, box)
            phones = admin.endpoint_views(session, box)
        return render.pjsip_sections(trunks, phones, self.config.asterisk.inbound_context)

    def check_agi_port(self) -> None:
        """Refuse to start where any local user may take the FastAGI port while the
        controller is down (asterisk/agi_port.py says what they could do with it)."""
        config = self.config.agi
        start = agi_port.unprivileged_port_start()
        if start is None or not agi_port.open_to_others(start, config.port):
            return
        danger = agi_port.danger(start, config.port)
        if not config.allow_unprivileged_ports:
            raise StartupError(
                f"agi.port: {danger}; {agi_port.fix(config.port)}; agi.allow_unprivileged_ports "
                "starts anyway, on throwaway test machines only"
            )
        log.warning("%s (started anyway: agi.allow_unprivileged_ports)", danger)

    async def database_ok(self) -> bool:
        try:
            await asyncio.to_thread(db.ping, self.engine)
        except Exception:
            return False
        return True

    async def run(self, stop: asyncio.Event) -> int:
        """Start everything, wait for stop (or a refused AMI login), shut down in order:
        listeners first, then the background tasks, then the last call writes, then AMI."""
        self.check_agi_port()
        check_migrated(self.engine)
        secret = resolve_secret("ami.secret", self.config.ami.secret)
        uid = render.asterisk_uid(self.config)
        asterisk = {0, uid}  # the peers trusted on AMI and FastAGI: root, or Asterisk's user
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(self.engine.dispose)
            alerts = AlertMail(self.mailer, self.store.sessions)  # ALERT lines go out by mail
            logging.getLogger().addHandler(alerts)
            stack.callback(logging.getLogger().removeHandler, alerts)
            stack.callback(alerts.close)
            features = self.features(secret, asterisk, uid)
            stack.push_async_callback(features.ami.close)
            stack.push_async_callback(features.writer.flush)
            tasks = Supervisor()
            stack.push_async_callback(tasks.close)
            stack.callback(
                lambda: self.periodic.shutdown(wait=False) if self.periodic.running else None
            )
            await features.routes.refresh()  # Asterisk has the current routes, even now
            self.start(features, tasks)
            agi = await self.serve_fastagi(stack, features, asterisk)
            await self.serve_http(stack, features, agi)
            features.ami.start()
            sdnotify.ready()
            log.info(
                "controller ready: FastAGI port %s, HTTP port %s, Asterisk %s",
                agi.port,
                self.config.http.port,
                self.config.asterisk.mode,
            )
            await _first(stop.wait(), features.ami.auth_failed.wait())
            sdnotify.stopping()
            log.info("controller stopping")
            return EXIT_AMI_AUTH if features.ami.auth_failed.is_set() else 0
        return 0

    def features(self, secret: str, asterisk: set[int], uid: int) -> Features:
        config, bus = self.config, EventBus()
        ami = AmiClient(
            config.ami.host,
            config.ami.port,
            config.ami.username,
            secret,
            allowed_uids=asterisk,
            max_backoff=config.ami.max_backoff,
        )
        writer = CallWriter(self.store, bus, quiet_in=lambda: calls.quiet_in())
        calls = CallFollower(writer, only_ours=config.attached)
        vault = RecordingVault(
            self.store.sessions,
            Path(config.recordings.store_dir),
            Path(config.recordings.key_file),
            key_passphrase(config),
            spool_owners={uid},
            on_sealed=transcription.Queuer(config),
        )
        # privacy (person): an erasure left unfinished is finished by the job runner
        self.jobs.handlers.update(erasure.handlers(vault, bootstrap.secret_box(config)))
        routes = self.publisher(ami)
        self.load_plugins(routes)
        HookSites(self.plugins, self.store.sessions, self.decided).subscribe(bus)
        features = Features(
            ami=ami,
            writer=writer,
            calls=calls,
            routes=routes,
            reconciler=Reconciler(
                self.store,
                writer,
                config.asterisk_dir_on_host / render.CDR_DIR,
                ami.active_linkedids,
            ),
            vault=vault,
            sweeper=SpoolSweeper(vault, config.spool_on_host, ami.active_linkedids, bus),
            live=LiveRecordings(self.store, calls, ami, record_code(secret)),
            metrics=self.metrics(calls, ami),
        )
        features.metrics.subscribe(bus)
        ami.handlers += [calls.on_event, features.live.on_event, self.registrations.on_event]
        return features

    def publisher(self, ami: AmiClient) -> DialplanPublisher:
        config = self.config
        claims = RouteClaims(self.plugins)
        if config.attached:  # the routing table only, for the FastAGI scripts
            return DialplanPublisher(
                self.store, None, render.dialplan_settings(config), ami, claims=claims
            )
        return DialplanPublisher(
            self.store,
            render.routes_path(config),
            render.dialplan_settings(config),
            ami,
            pjsip=(render.pjsip_path(config), self.pjsip_sections),
            claims=claims,
        )

    def load_plugins(self, routes: DialplanPublisher) -> None:
        """The built-in behaviour first, then (unless turned off) the admin's plugins."""
        self.plugins.add_builtin(builtin.Routing(lambda: routes.table), builtin.NAME)
        if self.config.plugins.enabled:
            self.plugins.load(Path(self.config.plugins.dir))
        plugin_status.write(self.config, self.plugins)

    def metrics(self, calls: CallFollower, ami: AmiClient) -> Metrics:
        config = self.config
        volumes = {
            "data": config.data_dir,
            "recordings": Path(config.recordings.store_dir),
            "spool": config.spool_on_host,
        }
        return Metrics(
            self.store.sessions,
            volumes,
            active_calls=lambda: len(calls.in_progress()),
            ami_connected=lambda: ami.is_connected,
        )

    def start(self, features: Features, tasks: Supervisor) -> None:
        managed = not self.config.attached  # the CDRs, the spool and the trunks are ours

        async def after_login() -> None:
            await features.routes.on_login()
            if managed:
                await features.reconciler.reconcile()
                await features.sweeper.sweep_orphans()

        features.ami.on_login.append(lambda: tasks.spawn("after AMI login", after_login()))
        tasks.spawn("systemd watchdog", sdnotify.watchdog())
        tasks.spawn("call writer", features.writer.run())
        tasks.spawn("routing refresh", features.routes.run())
        if managed:
            tasks.spawn("spool sweeper", features.sweeper.run())  # seals within a second
            tasks.spawn("registration watch", self.watch_registrations())
        ami_down = Outage("Asterisk's manager interface (AMI): calls go on, but are not followed")
        tasks.spawn("AMI watch", outage.watch(ami_down, lambda: features.ami.is_connected))
        tasks.spawn("jobs", self.jobs.run())
        tasks.spawn("outbox", self.outbox.run())
        self.schedule_periodic(features)

    def schedule_periodic(self, features: Features) -> None:
        """Maintenance on APScheduler: none of it is on a call's way."""
        schedule = self.periodic
        reconciler = features.reconciler
        if not self.config.attached:  # the site's CDRs are not written for the appliance
            every(schedule, "reconciliation", reconciler.interval, reconciler.reconcile,
                  first=reconciler.interval)  # fmt: skip
        limits = RetentionJob(self.store.sessions, features.vault)
        every(
            schedule, "recording limits", limits.interval, lambda: asyncio.to_thread(limits.apply)
        )
        every(schedule, "account erasure", 3600, lambda: self.erase_accounts(features), first=120)
        privacy = self.config.privacy
        expiry = PrivacyRetention(
            self.store.sessions,
            features.vault,
            render.cdr_dir(self.config),
            privacy.log_days,
            privacy.audit_days,
        )
        every(
            schedule, "retention", expiry.interval, lambda: asyncio.to_thread(expiry.apply),
            first=900,
        )  # fmt: skip
        every(schedule, "finished jobs purge", 3600, self.purge_jobs, first=60)
        every(schedule, "plugin status", 10, self.write_plugin_status, first=10)
        every(schedule, "search index compaction", 3600, self.compact_search, first=300)
        schedule.start()

    @functools.cached_property
    def periodic(self) -> AsyncIOScheduler:
        return periodic.scheduler()

    def stop_periodic(self) -> None:
        if self.periodic.running:
            self.periodic.shutdown(wait=False)

    async def erase_accounts(self, features: Features) -> None:
        """Client accounts whose grace period after deletion has ended."""
        erased = await asyncio.to_thread(
            account_deletion.erase_due, self.store.sessions, features.vault
        )
        for account_id, counts in erased.items():
            log.info("account %d erased: %s", account_id, counts)

    async def purge_jobs(self) -> None:
        def purge() -> int:
            with self.store.sessions.begin() as session:
                return jobs_queue.purge(session, time.time())

        gone = await asyncio.to_thread(purge)
        if gone:
            log.info("forgot %d finished jobs", gone)

    async def write_plugin_status(self) -> None:
        await asyncio.to_thread(plugin_status.write, self.config, self.plugins)

    async def compact_search(self) -> None:
        def compact() -> None:
            with self.store.sessions.begin() as session:
                search.compact(session)

        await asyncio.to_thread(compact)

    async def serve_fastagi(
        self, stack: contextlib.AsyncExitStack, features: Features, asterisk: set[int]
    ) -> FastAgiServer:
        config = self.config.agi
        agi = FastAgiServer(
            {
                DYNAMIC_SCRIPT: DynamicRoute(
                    lambda: features.routes.table, self.plugins, self.decided
                ),
                **integrator_agi.handlers(
                    Services(
                        self.store.sessions,
                        features.writer,
                        features.calls,
                        lambda: features.routes.table,
                    )
                ),
            },
            config.request_timeout,
            allowed_uids=asterisk,
        )
        await listen("agi.port", config.host, config.port, agi.start(config.host, config.port))
        stack.push_async_callback(agi.close)
        return agi

    async def serve_http(
        self, stack: contextlib.AsyncExitStack, features: Features, agi: FastAgiServer
    ) -> None:
        config = self.config
        checks = {
            "ami": lambda: features.ami.is_connected,
            "database": self.database_ok,
            "recordings": lambda: features.sweeper.healthy,
            "routes": lambda: features.routes.healthy,
        }
        app = init_app(
            checks,
            lambda: counters(features, agi, self),
            self.store.sessions,
            features.vault,
            features.live,
            tls=config.http.tls,
            box=bootstrap.secret_box(config),
            mailer=self.mailer,
            base_url=base_url(config),
            registrations=self.registrations,
            tracking_url=tracking_url(config),
            destinations=config.destinations,
            transcription_off=functools.partial(transcription.off_reason, config),
            metrics=features.metrics,
            plugins=self.plugins.listing,
            attached=config.attached,
            trusted_proxies=parse_proxies(config.http.trusted_proxies),
        )
        http = config.http
        limits = limits_for(
            "admin UI",
            http.max_connections,
            http.connections_per_network,
            ADMIN_TIMEOUT,
            RESERVE,
            is_proxy=functools.partial(is_proxy, proxies=parse_proxies(http.trusted_proxies)),
        )
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=limits.idle)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        ssl_context = server_context(config.data_dir) if http.tls else None
        self.http = GuardedListener(runner, limits, ssl_context)
        await listen("http.port", http.host, http.port, self.http.start(http.host, http.port))
        stack.push_async_callback(self.http.close)


def base_url(config: Config) -> str:
    """What links the appliance mails start with: the public URL, else this host's name."""
    http = config.http
    return _address(http.public_url, http.host, http.port, http.tls)


def tracking_url(config: Config) -> str:
    """Where websites load the snippet from."""
    tracking = config.tracking
    return _address(tracking.public_url, tracking.host, tracking.port, tracking.tls)


def _address(public_url: str, host: str, port: int, tls: bool) -> str:
    if public_url:
        return public_url.rstrip("/")
    if host in ("0.0.0.0", "::", ""):  # a comparison, not a bind
        host = socket.getfqdn()
    return f"{'https' if tls else 'http'}://{host}:{port}"


def counters(features: Features, agi: FastAgiServer, controller: Controller) -> dict[str, int]:
    """What happened since start, for /health: operators and tests follow it, not the log."""
    return {
        "ami_logins": features.ami.logins,
        "ami_impostors": features.ami.impostors,
        "agi_answered": agi.answered,
        "agi_refused": agi.refused,
        "dialplan_reloads": features.routes.reloads,
        "pjsip_reloads": features.routes.pjsip_reloads,
        "reconciled_calls": features.reconciler.reconciled,
        "spool_refused": features.sweeper.refused,
        **{
            f"http_{k}": v
            for k, v in (controller.http.counters() if controller.http else {}).items()
        },
        "jobs_done": controller.jobs.done,
        "jobs_failed": controller.jobs.failed,
        "deliveries_sent": controller.outbox.delivered,
        "deliveries_parked": controller.outbox.failed,
        **controller.plugins.totals(),
        **tracking_status.read_counters(controller.config),  # its own process's
    }


async def _first(*waits: Awaitable[object]) -> None:
    waiters = {asyncio.ensure_future(wait) for wait in waits}
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def serve(config: Config) -> int:
    lower_priority()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    bound_loop_errors(loop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await Controller(config).run(stop)
    except (StartupError, ConfigError) as exc:
        log.error("%s", exc)
        return 2
