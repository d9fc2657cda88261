"""The pages about calls: the dashboard, the call log and its export, a call with its player,
and the calls going on now. Server-rendered; every value reaches the page through Jinja's
autoescaping."""

from __future__ import annotations

import datetime as dt
import time
import urllib.parse
import zoneinfo

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance import audit
from appliance.access import Permission, Principal, account_names
from appliance.attribution import report
from appliance.calls import dashboard
from appliance.calls import log as call_log
from appliance.calls.tracker import InProgress
from appliance.db.models import Account, Call
from appliance.forms import whole
from appliance.web import api, charts, playback, retention, transcripts
from appliance.web.auth import (
    SESSIONS,
)
from appliance.web.hardening import Refused
from appliance.web.keys import PRINCIPAL
from appliance.web.offload import EXPORTS, offload
from appliance.web.render import account_zone, csv_response, csv_text, render, zone_named

CSV_COLUMNS = (
    "id",
    "started_at",
    "dialled",
    "caller_number",
    "caller_name",
    "source",
    "medium",
    "campaign",
    "route",
    "disposition",
    "ring_seconds",
    "talk_seconds",
    "first_time",
    "after_hours",
    "recorded",
    "consent_announced",
    "consent_prompt",
    "consent_at",
    "recording_opted_out",
    "restricted",
    "attribution",
    "score",
)


# signing in -------------------------------------------------------------------------------


# the user's own settings ----------------------------------------------------------------------


# calls ------------------------------------------------------------------------------------
def _log_page(
    sessions: sessionmaker[Session],
    principal: Principal,
    wanted: call_log.CallFilter,
    cursor: str | None,
) -> tuple[list[call_log.CallRow], str | None, str]:
    with sessions() as session:
        rows, after = call_log.page(session, principal, wanted, cursor, 50)
        account = session.get(Account, principal.account_id)
        return rows, after, account.timezone if account else "UTC"


async def calls(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    try:
        wanted = call_log.parse_filter(request.query)
        rows, after, zone = await offload(
            request,
            _log_page,
            request.app[SESSIONS],
            principal,
            wanted,
            request.query.get("cursor"),
        )
    except call_log.BadFilter as exc:
        raise Refused(400, str(exc)) from None
    kept = {k: v for k, v in request.query.items() if k != "cursor" and v}
    next_url = None
    if after:
        next_url = "/calls?" + urllib.parse.urlencode({**kept, "cursor": after})
    return render(
        request,
        "calls.html",
        rows=rows,
        zone=zone_named(zone),
        query=kept,
        next_url=next_url,
        csv_url="/calls.csv?" + urllib.parse.urlencode(kept),
        dispositions=call_log.DISPOSITIONS,
    )


def _csv(
    sessions: sessionmaker[Session],
    principal: Principal,
    wanted: call_log.CallFilter,
    client: str | None,
) -> str:
    with sessions.begin() as session:
        rows = (row.as_json() for row in call_log.every(session, principal, wanted))
        text, count = csv_text(CSV_COLUMNS, rows)
        audit.record(
            session,
            principal.actor,
            "calls.export",
            client=client,
            detail=f"{count} calls",
            account_id=principal.account_id,
        )
    return text


async def calls_csv(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    try:
        wanted = call_log.parse_filter(request.query)
    except call_log.BadFilter as exc:
        raise Refused(400, str(exc)) from None
    async with request.app[EXPORTS]:
        text = await offload(
            request, _csv, request.app[SESSIONS], principal, wanted, request.remote
        )
    return csv_response(text, "calls.csv")


async def call(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    found = await playback.call_for(request, request.app[SESSIONS])
    zone = await offload(request, account_zone, request.app[SESSIONS], principal)
    seen = await offload(request, _visit, request.app[SESSIONS], principal, found.visit_id)
    said = await transcripts.for_request(request, found)
    hold = await offload(request, retention.held, request.app[SESSIONS], found.id)
    return render(
        request, "call.html", call=found, visit=seen, zone=zone_named(zone), said=said, held=hold
    )


def _visit(
    sessions: sessionmaker[Session], principal: Principal, visit_id: str | None
) -> report.VisitView | None:
    with sessions() as session:
        return report.visit(session, principal, visit_id)


async def recording(request: web.Request) -> web.StreamResponse:
    return await playback.stream(request, request.app[SESSIONS])


def _dashboard(
    sessions: sessionmaker[Session],
    principal: Principal,
    since: dt.date,
    until: dt.date,
    account_id: int | None,
    zone: zoneinfo.ZoneInfo,
) -> tuple[dashboard.Dashboard, list[tuple[int, str]]]:
    with sessions() as session:
        board = dashboard.build(session, principal, since, until, account_id, zone)
        return board, account_names(session, principal)


async def home(request: web.Request) -> web.Response:
    """The dashboard, in the days of the user's account's time zone."""
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    zone = zone_named(await offload(request, account_zone, request.app[SESSIONS], principal))
    query = request.query
    account = query.get("account", "")
    try:
        today = dt.datetime.now(zone).date()
        since, until = dashboard.date_range(query.get("from"), query.get("to"), today)
        if account and not (whole(account) and principal.sees(int(account))):
            raise dashboard.BadRange("no such account")
    except dashboard.BadRange as exc:
        raise Refused(400, str(exc)) from None
    account_id = int(account) if account else None
    board, accounts = await offload(
        request, _dashboard, request.app[SESSIONS], principal, since, until, account_id, zone
    )
    chart = charts.stacked_by_day(board.per_day, board.days)
    return render(
        request,
        "dashboard.html",
        board=board,
        chart=chart,
        accounts=accounts,
        account=account_id,
        zone=zone.key,
    )


# live calls --------------------------------------------------------------------------------
def _live(
    sessions: sessionmaker[Session], principal: Principal, going: list[InProgress]
) -> list[tuple[InProgress, str, str | None]]:
    """The calls in progress this principal may see, with their call ids and routes."""
    if not going:
        return []
    with sessions() as session:
        found = session.execute(
            select(Call.linkedid, Call.id, Call.route_name).where(
                Call.linkedid.in_([c.linkedid for c in going]), principal.where(Call.account_id)
            )
        ).all()
    known = {linkedid: (call_id, route) for linkedid, call_id, route in found}
    return [(c, *known[c.linkedid]) for c in going if c.linkedid in known]


async def live_calls(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    live = request.app.get(api.LIVE)
    going = live.calls.in_progress() if live is not None else None
    rows = await offload(request, _live, request.app[SESSIONS], principal, going or [])
    return render(request, "live.html", rows=rows, following=going is not None, now=time.time())


# users -------------------------------------------------------------------------------------


# audit log ---------------------------------------------------------------------------------


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/calls", calls)
    app.router.add_get("/calls.csv", calls_csv)
    app.router.add_get("/calls/{call_id}", call)
    app.router.add_get("/calls/{call_id}/recording", recording)
    app.router.add_get("/live", live_calls)
