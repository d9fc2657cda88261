"""A call's transcript for the call page and the API: as sensitive as its recording (the same
permission), and every read is written to the audit log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from appliance import audit
from appliance.access import Permission, Principal
from appliance.calls import log as call_log
from appliance.forms import whole
from appliance.transcription import analysis_store, search, service
from appliance.web import playback
from appliance.web.auth import SESSIONS
from appliance.web.hardening import Refused
from appliance.web.keys import PRINCIPAL
from appliance.web.offload import offload
from appliance.web.render import account_zone, render, zone_named

# Why calls are not transcribed (None: they are); asked when a call has no transcript.
TRANSCRIPTION_OFF: web.AppKey[Callable[[], str | None]] = web.AppKey("transcription_off")


@dataclass(frozen=True)
class Panel:
    progress: service.Progress
    transcript: service.TranscriptView | None
    off: str | None  # why there is none, when transcription is off
    analysis: analysis_store.AnalysisView | None = None

    def as_json(self) -> dict[str, Any]:
        found, seen = self.transcript, self.analysis
        return {
            "state": self.progress.state,
            "error": self.progress.detail if self.progress.state == "parked" else None,
            "off": self.off,
            "transcript": None
            if found is None
            else {
                "model": found.model,
                "seconds": found.seconds,
                "words": [
                    {
                        "speaker": w.speaker,
                        "start": w.start,
                        "end": w.end,
                        "confidence": w.confidence,
                        "word": w.text,
                    }
                    for w in found.words
                ],
                "turns": [
                    {"speaker": t.speaker, "start": t.start, "end": t.end, "text": t.text}
                    for t in found.turns
                ],
            },
            "analysis": None
            if seen is None
            else {
                "score": seen.score,
                "category": seen.category,
                "tags": seen.tags,
                "spam": seen.spam,
                **seen.details,
            },
        }


def panel(
    sessions: sessionmaker[Session],
    principal: Principal,
    call: call_log.CallRow,
    client: str | None,
    off: Callable[[], str | None],
) -> Panel:
    """The transcript of a call this principal may see (the caller checked), audited."""
    with sessions.begin() as session:
        found = service.read(session, call.id)
        if found is not None:
            audit.record(
                session,
                principal.actor,
                "transcript.read",
                call.id,
                client=client,
                account_id=call.account_id,
            )
        progress = service.progress(session, call.id)
        seen = analysis_store.read(session, call.id) if found is not None else None
    return Panel(progress, found, None if found is not None else off(), seen)


async def for_request(request: web.Request, call: call_log.CallRow) -> Panel | None:
    """The panel for the call page, or None when this principal may not read recordings."""
    principal: Principal = request[PRINCIPAL]
    if not principal.can(Permission.RECORDINGS_READ):
        return None
    off = request.app.get(TRANSCRIPTION_OFF, lambda: "transcription is not set up")
    return await offload(
        request, panel, request.app[SESSIONS], principal, call, request.remote, off
    )


async def api(request: web.Request) -> web.Response:
    """GET /api/v1/calls/{call_id}/transcript"""
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.RECORDINGS_READ)
    call = await playback.call_for(request, request.app[SESSIONS])
    found = await for_request(request, call)
    assert found is not None
    return web.json_response(found.as_json())


def _search(
    sessions: sessionmaker[Session],
    principal: Principal,
    query: str,
    limit: int,
    client: str | None,
) -> list[search.Hit]:
    with sessions.begin() as session:
        hits = search.search(session, principal, query, limit)
        # what was searched for may itself be personal: only that a search was made is kept,
        # and each call whose words it showed, under that call's account
        audit.record(session, principal.actor, "transcripts.search", client=client,
                     detail=f"{len(hits)} result(s)", account_id=principal.account_id)  # fmt: skip
        for call_id, account_id in dict.fromkeys((h.call_id, h.account_id) for h in hits):
            audit.record(session, principal.actor, "transcript.read", call_id, client=client,
                         detail="a search result", account_id=account_id)  # fmt: skip
        return hits


def _searcher(request: web.Request) -> Principal:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    principal.require(Permission.RECORDINGS_READ)
    return principal


async def search_page(request: web.Request) -> web.Response:
    """GET /search?q=: the calls in which these words were said."""
    principal = _searcher(request)
    query = request.query.get("q", "").strip()
    hits: list[search.Hit] = []
    problem = None
    if query:
        try:
            hits = await offload(
                request, _search, request.app[SESSIONS], principal, query, 100, request.remote
            )
        except search.BadQuery as exc:
            problem = str(exc)
    zone = await offload(request, account_zone, request.app[SESSIONS], principal)
    return render(request, "search.html", query=query, hits=hits, problem=problem,
                  zone=zone_named(zone))  # fmt: skip


async def search_api(request: web.Request) -> web.Response:
    """GET /api/v1/transcripts/search?q=&limit="""
    principal = _searcher(request)
    limit = request.query.get("limit", "50")
    if not whole(limit) or not 1 <= int(limit) <= 200:
        raise Refused(400, "limit: a number from 1 to 200")
    try:
        hits = await offload(
            request,
            _search,
            request.app[SESSIONS],
            principal,
            request.query.get("q", ""),
            int(limit),
            request.remote,
        )
    except search.BadQuery as exc:
        raise Refused(400, f"q: {exc}") from None
    return web.json_response(
        {
            "results": [
                {
                    "call_id": h.call_id,
                    "started_at": h.started_at.isoformat(),
                    "caller_number": h.caller_number,
                    "speaker": h.speaker,
                    "start": h.start,
                    "snippet": "".join(text for text, _ in h.snippet),
                    "matches": [text for text, mark in h.snippet if mark],
                }
                for h in hits
            ]
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/search", search_page)
    app.router.add_get("/api/v1/calls/{call_id}/transcript", api)
    app.router.add_get("/api/v1/transcripts/search", search_api)
