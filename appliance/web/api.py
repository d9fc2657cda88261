"""The REST API: bearer-token authentication and recording playback with HTTP Range."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance.asterisk.ami import AmiError
from appliance.calls.model import is_call_id
from appliance.db.models import ApiKey
from appliance.recordings import wav
from appliance.recordings.container import RecordingError, SealedRecording
from appliance.recordings.keys import KeyProblem
from appliance.recordings.live import CallNotLive, LiveRecordings, RecordingRefused
from appliance.recordings.vault import RecordingNotFound, RecordingVault
from appliance.secrets import token_hash
from appliance.web.app import Handler

DOWNLOAD_ROLES = ("admin", "manager")


@dataclass(frozen=True)
class Principal:
    username: str
    role: str


SESSIONS: web.AppKey[sessionmaker[Session]] = web.AppKey("sessions", sessionmaker)
VAULT: web.AppKey[RecordingVault] = web.AppKey("vault", RecordingVault)
PRINCIPAL = "appliance.principal"


def lookup_token(sessions: sessionmaker[Session], token: str) -> Principal | None:
    with sessions() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.token_hash == token_hash(token)))
        return Principal(key.user.username, key.user.role) if key else None


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/"):
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    principal = None
    if scheme.lower() == "bearer" and 0 < len(token) <= 200:
        principal = await asyncio.to_thread(lookup_token, request.app[SESSIONS], token.strip())
    if principal is None:
        raise web.HTTPUnauthorized(
            text='{"error": "a valid API token is required"}',
            content_type="application/json",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request[PRINCIPAL] = principal
    return await handler(request)


async def recording(request: web.Request) -> web.StreamResponse:
    """GET /api/calls/{call_id}/recording[?download=1]: the call as a WAV, seekable."""
    principal: Principal = request[PRINCIPAL]
    call_id = request.match_info["call_id"]
    if not is_call_id(call_id):
        raise web.HTTPNotFound(text="no such call")
    download = request.query.get("download") == "1"
    if download and principal.role not in DOWNLOAD_ROLES:
        raise web.HTTPForbidden(text=f"role {principal.role} may play recordings, not download")
    action = "recording.download" if download else "recording.play"
    try:
        sealed, stream = await asyncio.to_thread(
            request.app[VAULT].load, call_id, f"user:{principal.username}", action, request.remote
        )
    except RecordingNotFound:
        raise web.HTTPNotFound(text="no recording for this call") from None
    except (RecordingError, KeyProblem) as exc:
        raise web.HTTPServiceUnavailable(text=f"recording cannot be opened: {exc}") from None
    try:
        return await _send(request, sealed, download, call_id)
    finally:
        stream.close()


async def _send(
    request: web.Request, sealed: SealedRecording, download: bool, call_id: str
) -> web.StreamResponse:
    total = wav.size(sealed)
    try:
        wanted = request.http_range
    except ValueError:
        unsatisfiable = {"Content-Range": f"bytes */{total}"}
        raise web.HTTPRequestRangeNotSatisfiable(headers=unsatisfiable) from None
    start = wanted.start or 0
    if start < 0:  # a suffix range: the last n bytes
        start = max(0, total + start)
    stop = total if wanted.stop is None else min(wanted.stop, total)
    if start >= total or start >= stop:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{total}"})
    partial = "Range" in request.headers
    response = web.StreamResponse(status=206 if partial else 200)
    response.content_type = "audio/wav"
    response.content_length = stop - start
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Cache-Control"] = "no-store"
    disposition = "attachment" if download else "inline"
    response.headers["Content-Disposition"] = f'{disposition}; filename="call-{call_id}.wav"'
    if partial:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{total}"
    await response.prepare(request)
    parts = wav.read(sealed, start, stop)
    while (part := await asyncio.to_thread(next, parts, None)) is not None:
        await response.write(part)
    await response.write_eof()
    return response


LIVE: web.AppKey[LiveRecordings] = web.AppKey("live", LiveRecordings)
CONTROL_ROLES = ("admin", "manager")


async def control(request: web.Request) -> web.Response:
    """POST /api/calls/{call_id}/recording/{pause,resume,start} on a call in progress."""
    principal: Principal = request[PRINCIPAL]
    if principal.role not in CONTROL_ROLES:
        raise web.HTTPForbidden(text=f"role {principal.role} may not control recordings")
    call_id, verb = request.match_info["call_id"], request.match_info["verb"]
    if not is_call_id(call_id):
        raise web.HTTPNotFound(text="no such call")
    live, vault, actor = request.app[LIVE], request.app[VAULT], f"user:{principal.username}"
    try:
        if verb == "start":
            await live.start(call_id)
        else:
            await live.pause(call_id, paused=verb == "pause")
    except CallNotLive:
        raise web.HTTPNotFound(text="no call in progress with this id") from None
    except (RecordingRefused, AmiError) as exc:
        await asyncio.to_thread(
            vault.audit, actor, f"recording.{verb}.refused", call_id, request.remote, str(exc)
        )
        raise web.HTTPConflict(text=f"refused: {exc}") from None
    await asyncio.to_thread(vault.audit, actor, f"recording.{verb}", call_id, request.remote)
    return web.json_response({"call_id": call_id, "recording": verb})


def add_routes(
    app: web.Application,
    sessions: sessionmaker[Session],
    vault: RecordingVault,
    live: LiveRecordings | None = None,
) -> None:
    app[SESSIONS] = sessions
    app[VAULT] = vault
    app.middlewares.append(authenticate)
    app.router.add_get("/api/calls/{call_id}/recording", recording)
    if live is not None:
        app[LIVE] = live
        app.router.add_post("/api/calls/{call_id}/recording/{verb:pause|resume|start}", control)
