"""The REST API under /api/v1: bearer tokens, JSON in and out, errors as
{"error": {"code", "message"}}. docs/integrator-guide.md describes it."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from appliance.access import Permission, Principal
from appliance.asterisk.ami import AmiError
from appliance.calls import log as call_log
from appliance.recordings.live import CallNotLive, LiveRecordings, RecordingRefused
from appliance.web import openapi, playback
from appliance.web.auth import SESSIONS
from appliance.web.hardening import Refused
from appliance.web.keys import PRINCIPAL

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
        rows, cursor = await asyncio.to_thread(
            _page, request.app[SESSIONS], principal, wanted, request.query.get("cursor"), limit
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
    return web.json_response(found.as_json())


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
        await asyncio.to_thread(
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
    await asyncio.to_thread(
        vault.audit,
        principal.actor,
        f"recording.{verb}",
        found.id,
        request.remote,
        None,
        found.account_id,
    )
    return web.json_response({"call_id": found.id, "recording": verb})


def add_routes(app: web.Application, live: LiveRecordings | None) -> None:
    app[openapi.DOCUMENT] = openapi.document(with_live_control=live is not None)
    app.router.add_get("/api/v1/openapi.json", openapi.serve)
    app.router.add_get("/api/v1/calls", calls)
    app.router.add_get("/api/v1/calls/{call_id}", call)
    app.router.add_get("/api/v1/calls/{call_id}/recording", recording)
    if live is not None:
        app[LIVE] = live
        app.router.add_post("/api/v1/calls/{call_id}/recording/{verb:pause|resume|start}", control)
