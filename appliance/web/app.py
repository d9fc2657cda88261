"""The aiohttp application: /health, the admin pages and the REST API, with the hardening and
authentication every request goes through."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from appliance import __version__, admin
from appliance.access import Permission, Principal
from appliance.asterisk.registrations import Registrations
from appliance.config import DestinationsConfig, SmtpConfig
from appliance.db.models import Job
from appliance.forwarded import Proxies
from appliance.mail import Mailer
from appliance.metrics import Metrics
from appliance.recordings.live import LiveRecordings
from appliance.recordings.vault import RecordingVault
from appliance.resources import shipped_dir
from appliance.secrets import SecretBox
from appliance.web import (
    api,
    auth,
    configure,
    conversions,
    manage,
    monitoring,
    offload,
    pages,
    people,
    playback,
    privacy,
    restricted,
    signin,
    transcripts,
    websites,
)
from appliance.web import plugins as plugins_page
from appliance.web.client import real_client
from appliance.web.hardening import errors, secure_headers
from appliance.web.keys import PRINCIPAL
from appliance.web.refusals import REFUSALS, RefusalLog, counts_written
from appliance.web.render import render

CHECKS: web.AppKey[dict[str, Callable[[], object]]] = web.AppKey("checks", dict)
Counters = Callable[[], dict[str, int]]
COUNTERS: web.AppKey[Counters] = web.AppKey("counters")


async def run_checks(app: web.Application) -> dict[str, bool]:
    results: dict[str, bool] = {}
    for name, check in app[CHECKS].items():
        try:
            outcome = check()
            if asyncio.iscoroutine(outcome):
                outcome = await asyncio.wait_for(outcome, 2.0)
            results[name] = bool(outcome)
        except Exception:
            results[name] = False
    return results


async def health(request: web.Request) -> web.Response:
    """Whether each feature works, for anyone (load balancers, monitoring); the version and
    what happened since start only for a token that may read the configuration."""
    checks = await run_checks(request.app)
    healthy = all(checks.values())
    body: dict[str, object] = {"status": "ok" if healthy else "degraded", "checks": checks}
    if "Authorization" in request.headers:
        principal = await auth.bearer(request)
        if principal is not None and principal.can(Permission.CONFIG_READ):
            trunks = await offload.offload(request, registration_states, request)
            body |= {"version": __version__, "counters": request.app[COUNTERS](), "trunks": trunks}
    return web.json_response(body, status=200 if healthy else 503)


def registration_states(request: web.Request) -> dict[str, str]:
    """Each registration trunk's state with its carrier ('unknown' until Asterisk says)."""
    with request.app[auth.SESSIONS]() as session:
        trunks = [t for t in admin.trunks(session) if t.kind == "registration"]
    found = request.app[auth.REGISTRATIONS]
    return {
        t.name: state.status if (state := found.state_of(t.host, t.port)) else "unknown"
        for t in trunks
    }


async def status(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_READ)
    jobs, parked = await offload.offload(request, job_counts, request.app[auth.SESSIONS])
    checks = await run_checks(request.app)
    off = request.app.get(transcripts.TRANSCRIPTION_OFF)
    transcription = await offload.offload(request, off) if off else "not set up"
    return render(request, "status.html", checks=checks, jobs=jobs, parked=parked,
                  transcription_off=transcription)  # fmt: skip


def job_counts(
    sessions: sessionmaker[Session],
) -> tuple[dict[str, int], list[tuple[int, str, str, int, str]]]:
    """How many jobs wait, run and were parked, and the parked ones with their errors."""
    with sessions() as session:
        counts = dict(session.execute(select(Job.state, func.count()).group_by(Job.state)).all())
        parked = session.scalars(
            select(Job).where(Job.state == "parked").order_by(Job.id.desc()).limit(50)
        ).all()
        waiting = {state: counts.get(state, 0) for state in ("queued", "running", "parked")}
        return waiting, [(j.id, j.kind, j.key, j.attempts, j.last_error or "") for j in parked]


def init_app(
    checks: dict[str, Callable[[], object]],
    counters: Counters,
    sessions: sessionmaker[Session],
    vault: RecordingVault,
    live: LiveRecordings | None = None,
    tls: bool = True,
    box: SecretBox | None = None,
    mailer: Mailer | None = None,
    base_url: str = "https://localhost:8443",
    registrations: Registrations | None = None,
    tracking_url: str = "https://localhost:8444",
    destinations: DestinationsConfig | None = None,
    transcription_off: Callable[[], str | None] | None = None,
    metrics: Metrics | None = None,
    plugins: Callable[[], list[dict[str, Any]]] | None = None,
    attached: bool = False,
    trusted_proxies: Proxies = (),
) -> web.Application:
    """`checks` say whether each feature works; `counters` (what happened since start) let
    operators and tests follow the controller without reading its log; `metrics` are served
    at /metrics (without the controller's, only what the database says); `trusted_proxies`
    are the reverse proxies whose X-Forwarded-For names the client."""
    app = web.Application(
        middlewares=[real_client(trusted_proxies), errors, auth.authenticate],
        client_max_size=256 * 1024,
    )
    metrics = metrics or Metrics(sessions)
    app[CHECKS] = checks
    app[COUNTERS] = counters
    app[configure.ATTACHED] = attached
    app[auth.SESSIONS] = sessions
    app[auth.THROTTLE] = auth.Throttle()
    app[auth.BOX] = box or SecretBox(secrets.token_bytes(32))
    app[auth.MAILER] = mailer or Mailer(SmtpConfig())
    app[auth.BASE_URL] = base_url.rstrip("/")
    app[auth.MAILING] = set()
    app[auth.REGISTRATIONS] = registrations or Registrations()
    app[REFUSALS] = RefusalLog(sessions, counted=metrics.requests_refused.inc)
    app.cleanup_ctx.append(counts_written)
    app[playback.VAULT] = vault
    app[websites.TRACKING_URL] = tracking_url.rstrip("/")
    if transcription_off is not None:
        app[transcripts.TRANSCRIPTION_OFF] = transcription_off
    app.on_response_prepare.append(secure_headers(tls))
    offload.setup(app)
    web_dir = shipped_dir("web")
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(web_dir / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app.router.add_get("/health", health)
    app.router.add_get("/status", status)
    app.router.add_static("/static/", web_dir / "static", follow_symlinks=False)
    signin.add_routes(app)
    pages.add_routes(app)
    manage.add_routes(app)
    privacy.add_routes(app)
    configure.add_routes(app)
    websites.add_routes(app)
    conversions.add_routes(app, destinations or DestinationsConfig())
    api.add_routes(app, live)
    monitoring.add_routes(app, metrics)
    transcripts.add_routes(app)
    restricted.add_routes(app)
    people.add_routes(app)
    plugins_page.add_routes(app, plugins)
    return app
