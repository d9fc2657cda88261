"""A call's recording over HTTP, for the player and the API alike: decrypted as it is sent,
seekable with Range, never cached, and written to the audit log before the first byte."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from appliance.access import Permission, Principal
from appliance.calls import log as call_log
from appliance.recordings import wav
from appliance.recordings.container import RecordingError
from appliance.recordings.keys import KeyProblem
from appliance.recordings.vault import RecordingNotFound, RecordingVault
from appliance.web import ranges
from appliance.web.hardening import Refused
from appliance.web.keys import PRINCIPAL
from appliance.web.offload import offload

VAULT: web.AppKey[RecordingVault] = web.AppKey("vault", RecordingVault)


def visible_call(
    sessions: sessionmaker[Session], principal: Principal, call_id: str
) -> call_log.CallRow | None:
    with sessions() as session:
        return call_log.one(session, principal, call_id)


async def call_for(request: web.Request, sessions: sessionmaker[Session]) -> call_log.CallRow:
    """The call named in the path, if this principal may see it; 404 whether it does not
    exist or belongs to someone else."""
    principal: Principal = request[PRINCIPAL]
    call = await offload(request, visible_call, sessions, principal, request.match_info["call_id"])
    if call is None:
        raise Refused(404, "no such call")
    return call


async def stream(request: web.Request, sessions: sessionmaker[Session]) -> web.StreamResponse:
    """GET .../calls/{call_id}/recording[?download=1]: the call as a WAV. Hearing and saving
    are one permission: whatever a browser can play, it can save."""
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.RECORDINGS_READ)
    call = await call_for(request, sessions)
    download = request.query.get("download") == "1"
    action = "recording.download" if download else "recording.play"
    try:
        sealed, source = await offload(
            request,
            request.app[VAULT].load,
            call.id,
            principal.actor,
            action,
            request.remote,
            call.account_id,
        )
    except RecordingNotFound:
        raise Refused(404, "this call has no recording") from None
    except (RecordingError, KeyProblem):
        raise Refused(
            503, "this recording cannot be opened now; the appliance log says why"
        ) from None
    try:
        total = wav.size(sealed)
        part = ranges.wanted(request.headers.get("Range"), total)
        if isinstance(part, ranges.Unsatisfiable):
            raise Refused(
                416, "that range is outside the recording", {"Content-Range": f"bytes */{total}"}
            )
        start, stop = (part.start, part.stop) if isinstance(part, ranges.Part) else (0, total)
        response = web.StreamResponse(status=206 if isinstance(part, ranges.Part) else 200)
        response.content_type = "audio/wav"
        response.content_length = stop - start
        response.headers["Accept-Ranges"] = "bytes"
        response.headers["Cache-Control"] = "no-store"
        disposition = "attachment" if download else "inline"
        response.headers["Content-Disposition"] = f'{disposition}; filename="call-{call.id}.wav"'
        if isinstance(part, ranges.Part):
            response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{total}"
        await response.prepare(request)
        if request.method != "HEAD":
            pieces = wav.read(sealed, start, stop)
            while (piece := await offload(request, next, pieces, None)) is not None:
                await response.write(piece)
        await response.write_eof()
        return response
    finally:
        source.close()
