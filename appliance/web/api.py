"""The REST API under /api/v1: bearer tokens, JSON in and out, errors as
{"error": {"code", "message"}}. docs/integrator-guide.md describes it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance.access import Permission, Principal
from appliance.asterisk.ami import AmiError
from appliance.attribution import report, sites
from appliance.calls import log as call_log
from appliance.db.models import Endpoint, Route, Source, TrackingNumber
from appliance.forms import whole
from appliance.recordings.live import CallNotLive, LiveRecordings, RecordingRefused
from appliance.web import openapi, playback
from appliance.web.auth import SESSIONS
from appliance.web.hardening import Refused
from appliance.web.keys import PRINCIPAL
from appliance.web.offload import offload

LIVE: web.AppKey[LiveRecordings] = web.AppKey("live", LiveRecordings)


def _page(
    sessions: sessionmaker[Session],
    principal: Principal,
    wanted: call_log.CallFilter,
    cursor: str | None,
    limit: int,
) -> tuple[list[call_log.CallRow], str | None]:
    with sessions() as session:
        return call_log.page(session, principal, wanted, cursor, limit)


async def calls(request: web.Request) -> web.Response:
    """GET /api/v1/calls?from&to&number&source&disposition&q&account&cursor&limit"""
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    try:
        wanted = call_log.parse_filter(request.query)
        limit = int(request.query.get("limit", "50"))
        rows, cursor = await offload(
            request,
            _page,
            request.app[SESSIONS],
            principal,
            wanted,
            request.query.get("cursor"),
            limit,
        )
    except call_log.BadFilter as exc:
        raise Refused(400, str(exc)) from None
    except ValueError:
        raise Refused(400, "limit: a number from 1 to 200") from None
    return web.json_response({"calls": [r.as_json() for r in rows], "next_cursor": cursor})


async def call(request: web.Request) -> web.Response:
    """GET /api/v1/calls/{call_id}"""
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    found = await playback.call_for(request, request.app[SESSIONS])
    seen = await offload(request, _visit, request.app[SESSIONS], principal, found.visit_id)
    return web.json_response(found.as_json() | {"visit": seen.as_json() if seen else None})


def _visit(
    sessions: sessionmaker[Session], principal: Principal, visit_id: str | None
) -> report.VisitView | None:
    with sessions() as session:
        return report.visit(session, principal, visit_id)


def _leads(sessions: sessionmaker[Session], principal: Principal, limit: int) -> list[dict]:
    with sessions() as session:
        return [row.as_json() for row in report.leads(session, principal, limit)]


async def leads(request: web.Request) -> web.Response:
    """GET /api/v1/leads?limit"""
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    text = request.query.get("limit", "100")
    if not whole(text) or not 1 <= int(text) <= 500:
        raise Refused(400, "limit: a number from 1 to 500")
    found = await offload(request, _leads, request.app[SESSIONS], principal, int(text))
    return web.json_response({"leads": found})


async def recording(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/calls/{call_id}/recording[?download=1]"""
    return await playback.stream(request, request.app[SESSIONS])


async def control(request: web.Request) -> web.Response:
    """POST /api/v1/calls/{call_id}/recording/{pause,resume,start} on a call in progress."""
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.RECORDINGS_CONTROL)
    found = await playback.call_for(request, request.app[SESSIONS])
    verb = request.match_info["verb"]
    live, vault = request.app[LIVE], request.app[playback.VAULT]
    try:
        if verb == "start":
            await live.start(found.id)
        else:
            await live.pause(found.id, paused=verb == "pause")
    except CallNotLive:
        raise Refused(409, "this call is not in progress") from None
    except (RecordingRefused, AmiError) as exc:
        await offload(
            request,
            vault.audit,
            principal.actor,
            f"recording.{verb}.refused",
            found.id,
            request.remote,
            str(exc),
            found.account_id,
        )
        reason = str(exc) if isinstance(exc, RecordingRefused) else "Asterisk refused it"
        raise Refused(409, f"refused: {reason}") from None
    await offload(
        request,
        vault.audit,
        principal.actor,
        f"recording.{verb}",
        found.id,
        request.remote,
        None,
        found.account_id,
    )
    return web.json_response({"call_id": found.id, "recording": verb})


def _configuration(
    sessions: sessionmaker[Session], principal: Principal, kind: str
) -> list[dict[str, object]]:
    """Numbers, sources, routes or phones of the principal's accounts (never secrets)."""
    with sessions() as session:
        mine = sorted(principal.accounts)
        if kind == "numbers":
            return [
                {
                    "number": n.e164,
                    "account_id": n.account_id,
                    "label": n.label,
                    "source": n.source.name if n.source else None,
                    "route": n.route.name if n.route else None,
                    "released": n.released_at is not None,
                }
                for n in session.scalars(
                    select(TrackingNumber)
                    .where(TrackingNumber.account_id.in_(mine))
                    .order_by(TrackingNumber.e164)
                )
            ]
        if kind == "sources":
            return [
                {"id": s.id, "account_id": s.account_id, "name": s.name, "medium": s.medium}
                for s in session.scalars(
                    select(Source).where(Source.account_id.in_(mine)).order_by(Source.name)
                )
            ]
        if kind == "routes":
            return [
                {
                    "id": r.id,
                    "account_id": r.account_id,
                    "name": r.name,
                    "targets": [t.value for t in r.targets],
                    "strategy": r.strategy,
                    "ring_timeout": r.ring_timeout,
                    "hours": r.hours,
                    "timezone": r.timezone,
                    "recording": r.recording,
                    "default": r.is_default,
                    "dynamic": r.dynamic,
                }
                for r in session.scalars(
                    select(Route).where(Route.account_id.in_(mine)).order_by(Route.name)
                )
            ]
        if kind == "sites":
            return [
                {
                    "name": s.name,
                    "account_id": s.account_id,
                    "key": s.key,
                    "origins": s.origins.split(),
                    "replace": s.replace_numbers.split(),
                    "consent_required": s.consent_required,
                    "hold_minutes": s.hold_minutes,
                    "forms": s.forms.split(),
                    "pool": [n.e164 for n in sites.pool(session, s)],
                    "rules": [
                        {"field": r.field, "contains": r.value, "number": r.number.e164}
                        for r in s.rules
                    ],
                }
                for s in sites.sites(session, set(mine))
            ]
        return [
            {"name": e.name, "account_id": e.account_id, "label": e.label}
            for e in session.scalars(
                select(Endpoint).where(Endpoint.account_id.in_(mine)).order_by(Endpoint.name)
            )
        ]


def configuration(kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        principal: Principal = request[PRINCIPAL]
        principal.require(Permission.CONFIG_READ)
        items = await offload(request, _configuration, request.app[SESSIONS], principal, kind)
        return web.json_response({kind: items})

    handler.__doc__ = f"GET /api/v1/{kind}"
    return handler


CONFIGURATION = ("numbers", "sources", "routes", "endpoints", "sites")


def add_routes(app: web.Application, live: LiveRecordings | None) -> None:
    for kind in CONFIGURATION:
        app.router.add_get(f"/api/v1/{kind}", configuration(kind))
    app[openapi.DOCUMENT] = openapi.document(with_live_control=live is not None)
    app.router.add_get("/api/v1/openapi.json", openapi.serve)
    app.router.add_get("/api/v1/calls", calls)
    app.router.add_get("/api/v1/calls/{call_id}", call)
    app.router.add_get("/api/v1/calls/{call_id}/recording", recording)
    app.router.add_get("/api/v1/leads", leads)
    if live is not None:
        app[LIVE] = live
        app.router.add_post("/api/v1/calls/{call_id}/recording/{verb:pause|resume|start}", control)
