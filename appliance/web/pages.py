"""The admin UI's pages: sign-in, password change, the call log and a call's detail with its
player. Server-rendered; every value reaches the page through Jinja's autoescaping."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import time
import urllib.parse
import zoneinfo
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance import accounts, admin, audit, audit_log, totp
from appliance.access import Permission, Principal, may_manage
from appliance.calls import dashboard
from appliance.calls import log as call_log
from appliance.calls.tracker import InProgress
from appliance.db.models import Account, AuditEntry, Call, User
from appliance.secrets import new_password
from appliance.web import api, charts, playback
from appliance.web.auth import (
    BOX,
    CODE_PAGE,
    SESSIONS,
    THROTTLE,
    clear_session_cookie,
    local_path,
    set_session_cookie,
)
from appliance.web.hardening import Refused
from appliance.web.keys import PRINCIPAL, SESSION
from appliance.web.render import render

CSV_MAX_ROWS = 100_000
CSV_COLUMNS = (
    "id",
    "started_at",
    "dialled",
    "caller_number",
    "caller_name",
    "source",
    "route",
    "disposition",
    "ring_seconds",
    "talk_seconds",
    "first_time",
    "after_hours",
    "recorded",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


# signing in -------------------------------------------------------------------------------
async def login_form(request: web.Request) -> web.Response:
    if request.get(PRINCIPAL) is not None:
        raise web.HTTPSeeOther(local_path(request.query.get("next")))
    return render(request, "login.html", next=local_path(request.query.get("next")))


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = local_path(str(form.get("next", "")))
    client = request.remote or "?"
    throttle = request.app[THROTTLE]
    if not throttle.allow(client):
        raise Refused(
            429, "too many sign-in attempts; wait a minute and try again", {"Retry-After": "60"}
        )
    async with throttle.checks:
        signed = await asyncio.to_thread(
            accounts.sign_in, request.app[SESSIONS], username, password[:1000], client
        )
    if signed is None:
        return render(
            request,
            "login.html",
            status=401,
            next=target,
            username=username[:200],
            error="Wrong user name or password, or the user is locked for a while.",
        )
    if signed.needs_code:
        after = "/password" if signed.must_change_password else target
        response = see_other(f"{CODE_PAGE}?" + urllib.parse.urlencode({"next": after}))
    else:
        response = see_other("/password" if signed.must_change_password else target)
    set_session_cookie(response, signed.token)
    return response


async def code_form(request: web.Request) -> web.Response:
    return render(request, "code.html", next=local_path(request.query.get("next")))


async def code(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    target = local_path(str(form.get("next", "")))
    client = request.remote or "?"
    throttle = request.app[THROTTLE]
    if not throttle.allow(client):
        raise Refused(429, "too many attempts; wait a minute and try again", {"Retry-After": "60"})
    token = await asyncio.to_thread(
        accounts.check_code,
        request.app[SESSIONS],
        request.app[BOX],
        request[SESSION],
        str(form.get("code", ""))[:20],
        client,
    )
    if token is None:
        return render(
            request,
            "code.html",
            status=401,
            next=target,
            error="That code is not right, or was used already. Try the next one.",
        )
    response = see_other(target)
    set_session_cookie(response, token)
    return response


# the user's own settings ----------------------------------------------------------------------
def _has_totp(sessions: sessionmaker[Session], user_id: int) -> bool:
    with sessions() as session:
        user = session.get(User, user_id)
        return user is not None and user.totp_sealed is not None


async def settings_page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    enabled = await asyncio.to_thread(_has_totp, request.app[SESSIONS], principal.user_id)
    return render(request, "account.html", status, totp_on=enabled, **shown)


async def settings_change(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    form = {k: str(v)[:1000] for k, v in (await request.post()).items()}
    action = form.get("action")
    if action == "begin":
        fresh = totp.new_secret()
        return await settings_page(
            request, setup_key=fresh, setup_uri=totp.setup_uri(fresh, principal.username)
        )
    if action not in ("confirm", "off"):
        raise Refused(400, "unknown action")
    secret = form.get("setup_key", "") if action == "confirm" else None
    try:
        async with request.app[THROTTLE].checks:
            await asyncio.to_thread(
                accounts.set_totp,
                request.app[SESSIONS],
                request.app[BOX],
                principal.user_id,
                form.get("password", ""),
                secret,
                form.get("code", ""),
                request.remote,
            )
    except accounts.PasswordRejected as exc:
        kept = {}
        if secret and totp.valid_secret(secret):  # the same key, so the phone entry still works
            kept = {"setup_key": secret, "setup_uri": totp.setup_uri(secret, principal.username)}
        return await settings_page(request, 400, error=str(exc).capitalize() + ".", **kept)
    words = "Two-step sign-in is on." if secret else "Two-step sign-in is off."
    return await settings_page(request, notice=words)


async def logout(request: web.Request) -> web.StreamResponse:
    token = request.get(SESSION)
    if token:
        await asyncio.to_thread(accounts.sign_out, request.app[SESSIONS], token, request.remote)
    response = see_other("/login")
    clear_session_cookie(response)
    return response


async def password_form(request: web.Request) -> web.Response:
    return render(request, "password.html")


async def password(request: web.Request) -> web.StreamResponse:
    principal: Principal = request[PRINCIPAL]
    form = await request.post()
    current, new, again = (str(form.get(k, ""))[:1000] for k in ("current", "new", "again"))
    error = "The two new passwords differ." if new != again else None
    if error is None:
        try:
            async with request.app[THROTTLE].checks:
                token = await asyncio.to_thread(
                    accounts.change_own_password,
                    request.app[SESSIONS],
                    principal.user_id,
                    current,
                    new,
                    request.remote,
                )
        except accounts.PasswordRejected as exc:
            error = str(exc).capitalize() + "."
    if error is not None:
        return render(request, "password.html", status=400, error=error)
    response = see_other("/calls")
    set_session_cookie(response, token)
    return response


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


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


async def calls(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    try:
        wanted = call_log.parse_filter(request.query)
        rows, after, zone = await asyncio.to_thread(
            _log_page, request.app[SESSIONS], principal, wanted, request.query.get("cursor")
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
        zone=_zone(zone),
        query=kept,
        next_url=next_url,
        csv_url="/calls.csv?" + urllib.parse.urlencode(kept),
        dispositions=call_log.DISPOSITIONS,
    )


def _cell(value: object) -> str:
    """Spreadsheets run cells that start like a formula: such text gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv(
    sessions: sessionmaker[Session],
    principal: Principal,
    wanted: call_log.CallFilter,
    client: str | None,
) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    columns = CSV_COLUMNS
    writer.writerow(columns)
    with sessions.begin() as session:
        count = 0
        for count, row in enumerate(call_log.every(session, principal, wanted), 1):
            if count > CSV_MAX_ROWS:
                break
            values = row.as_json()
            writer.writerow([_cell(values[c]) for c in columns])
        audit.record(
            session,
            principal.actor,
            "calls.export",
            client=client,
            detail=f"{min(count, CSV_MAX_ROWS)} calls",
            account_id=principal.account_id,
        )
    return out.getvalue()


async def calls_csv(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    try:
        wanted = call_log.parse_filter(request.query)
    except call_log.BadFilter as exc:
        raise Refused(400, str(exc)) from None
    text = await asyncio.to_thread(_csv, request.app[SESSIONS], principal, wanted, request.remote)
    return web.Response(
        text=text,
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
    )


async def call(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    found = await playback.call_for(request, request.app[SESSIONS])
    zone = await asyncio.to_thread(_account_zone, request.app[SESSIONS], principal)
    return render(request, "call.html", call=found, zone=_zone(zone))


def _account_zone(sessions: sessionmaker[Session], principal: Principal) -> str:
    with sessions() as session:
        account = session.get(Account, principal.account_id)
        return account.timezone if account else "UTC"


async def recording(request: web.Request) -> web.StreamResponse:
    return await playback.stream(request, request.app[SESSIONS])


def _dashboard(
    sessions: sessionmaker[Session],
    principal: Principal,
    since: dt.date,
    until: dt.date,
    account_id: int | None,
) -> tuple[dashboard.Dashboard, list[tuple[int, str]]]:
    with sessions() as session:
        board = dashboard.build(session, principal, since, until, account_id)
        names = session.execute(
            select(Account.id, Account.name)
            .where(Account.id.in_(sorted(principal.accounts)))
            .order_by(Account.parent_id.is_not(None), Account.name)
        ).all()
        return board, [(i, n) for i, n in names]


async def home(request: web.Request) -> web.Response:
    """The dashboard."""
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    query = request.query
    account = query.get("account", "")
    try:
        since, until = dashboard.date_range(query.get("from"), query.get("to"))
        if account and not (account.isdigit() and principal.sees(int(account))):
            raise dashboard.BadRange("no such account")
    except dashboard.BadRange as exc:
        raise Refused(400, str(exc)) from None
    account_id = int(account) if account else None
    board, accounts = await asyncio.to_thread(
        _dashboard, request.app[SESSIONS], principal, since, until, account_id
    )
    chart = charts.stacked_by_day(board.per_day, board.days)
    return render(
        request, "dashboard.html", board=board, chart=chart, accounts=accounts, account=account_id
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
    rows = await asyncio.to_thread(_live, request.app[SESSIONS], principal, going or [])
    return render(request, "live.html", rows=rows, following=going is not None, now=time.time())


# users -------------------------------------------------------------------------------------
def _users(
    sessions: sessionmaker[Session], principal: Principal
) -> tuple[list[tuple[str, str, str, bool]], list[tuple[int, str]]]:
    with sessions() as session:
        accounts_seen = session.execute(
            select(Account.id, Account.name)
            .where(Account.id.in_(sorted(principal.accounts)))
            .order_by(Account.parent_id.is_not(None), Account.name)
        ).all()
        names = dict(accounts_seen)
        people = [
            (u.username, u.role, names[u.account_id], u.must_change_password)
            for u in admin.users(session)
            if u.account_id in names
        ]
        return people, [(i, n) for i, n in accounts_seen]


async def users_page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.USERS_MANAGE)
    people, choices = await asyncio.to_thread(_users, request.app[SESSIONS], principal)
    return render(
        request, "users.html", status, people=people, accounts=choices, roles=admin.ROLES, **shown
    )


def _change_user(
    sessions: sessionmaker[Session], principal: Principal, form: dict[str, str], client: str
) -> str:
    """Carries out one form of the users page; returns what to tell the admin."""
    action, username = form.get("action", ""), form.get("username", "")[:200]
    actor = principal.actor
    with sessions.begin() as session:
        if action == "add":
            role, account = form.get("role", ""), form.get("account", "")
            if not account.isdigit():
                raise admin.AdminError("choose an account")
            may_manage(principal, int(account), role)
            password = new_password()
            admin.add_user(session, username, password, role, int(account), actor)
            return f"User {username} added. One-time password (shown once): {password}"
        user = admin.get_user(session, username)
        if user.id == principal.user_id:
            raise admin.AdminError("change your own user on the box or ask another admin")
        if action == "role":
            may_manage(principal, user.account_id, user.role, form.get("role", ""))
            admin.set_role(session, username, form.get("role", ""), actor)
            return f"{username} is now {form.get('role')}."
        if action == "password":
            may_manage(principal, user.account_id, user.role)
            password = new_password()
            admin.set_user_password(session, username, password, temporary=True, actor=actor)
            return f"New one-time password for {username} (shown once): {password}"
        if action == "remove":
            may_manage(principal, user.account_id, user.role)
            admin.remove_user(session, username, actor)
            return f"User {username} removed."
    raise admin.AdminError("unknown action")


async def users_change(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.USERS_MANAGE)
    form = {k: str(v)[:1000] for k, v in (await request.post()).items()}
    try:
        said = await asyncio.to_thread(
            _change_user, request.app[SESSIONS], principal, form, request.remote or "?"
        )
    except admin.AdminError as exc:
        return await users_page(request, 400, error=str(exc))
    return await users_page(request, notice=said)


# audit log ---------------------------------------------------------------------------------
def _audit_page(
    sessions: sessionmaker[Session],
    principal: Principal,
    wanted: audit_log.AuditFilter,
    before: int | None,
) -> tuple[list[AuditEntry], int | None]:
    with sessions() as session:
        rows, after = audit_log.page(session, principal, wanted, before)
        session.expunge_all()
        return rows, after


async def audit_entries(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.AUDIT_READ)
    before_text = request.query.get("before", "")
    try:
        wanted = audit_log.parse_filter(request.query)
        if before_text and not before_text.isdigit():
            raise audit_log.BadFilter("before: an entry number")
    except audit_log.BadFilter as exc:
        raise Refused(400, str(exc)) from None
    before = int(before_text) if before_text else None
    rows, after = await asyncio.to_thread(
        _audit_page, request.app[SESSIONS], principal, wanted, before
    )
    kept = {k: v for k, v in request.query.items() if k != "before" and v}
    zone = await asyncio.to_thread(_account_zone, request.app[SESSIONS], principal)
    return render(
        request,
        "audit.html",
        rows=rows,
        query=kept,
        zone=_zone(zone),
        utc=dt.UTC,
        next_url="/audit?" + urllib.parse.urlencode({**kept, "before": after}) if after else None,
        csv_url="/audit.csv?" + urllib.parse.urlencode(kept),
    )


AUDIT_COLUMNS = ("id", "at", "actor", "action", "subject", "client", "account_id", "detail")


def _audit_csv(
    sessions: sessionmaker[Session],
    principal: Principal,
    wanted: audit_log.AuditFilter,
    client: str | None,
) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_COLUMNS)
    with sessions.begin() as session:
        count = 0
        for count, entry in enumerate(audit_log.every(session, principal, wanted), 1):
            if count > CSV_MAX_ROWS:
                break
            writer.writerow([_cell(getattr(entry, c)) for c in AUDIT_COLUMNS])
        audit.record(
            session,
            principal.actor,
            "audit.export",
            client=client,
            detail=f"{min(count, CSV_MAX_ROWS)} entries",
            account_id=principal.account_id,
        )
    return out.getvalue()


async def audit_csv(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.AUDIT_READ)
    try:
        wanted = audit_log.parse_filter(request.query)
    except audit_log.BadFilter as exc:
        raise Refused(400, str(exc)) from None
    text = await asyncio.to_thread(
        _audit_csv, request.app[SESSIONS], principal, wanted, request.remote
    )
    return web.Response(
        text=text,
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get(CODE_PAGE, code_form)
    app.router.add_post(CODE_PAGE, code)
    app.router.add_get("/account", settings_page)
    app.router.add_post("/account", settings_change)
    app.router.add_get("/password", password_form)
    app.router.add_post("/password", password)
    app.router.add_get("/calls", calls)
    app.router.add_get("/calls.csv", calls_csv)
    app.router.add_get("/calls/{call_id}", call)
    app.router.add_get("/calls/{call_id}/recording", recording)
    app.router.add_get("/live", live_calls)
    app.router.add_get("/users", users_page)
    app.router.add_post("/users", users_change)
    app.router.add_get("/audit", audit_entries)
    app.router.add_get("/audit.csv", audit_csv)
