"""Pages that run the appliance: users and the audit log (and, in time, its configuration)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField
from sqlalchemy.orm import Session, sessionmaker

from appliance import accounts, admin, audit, audit_log, brand
from appliance.access import Denied, Permission, Principal, account_names, may_manage
from appliance.db.models import AuditEntry
from appliance.forms import whole
from appliance.mail import Mail, MailError
from appliance.privacy.retention import LABELS
from appliance.secrets import new_password
from appliance.web import retention
from appliance.web.auth import BASE_URL, MAILER, SESSIONS
from appliance.web.hardening import Refused
from appliance.web.keys import BRAND, PRINCIPAL
from appliance.web.offload import EXPORTS, offload
from appliance.web.render import account_zone, csv_response, csv_text, render, zone_named


def _users(
    sessions: sessionmaker[Session], principal: Principal
) -> tuple[list[tuple[str, str, str, bool]], list[tuple[int, str]]]:
    with sessions() as session:
        accounts_seen = account_names(session, principal)
        names = dict(accounts_seen)
        people = [
            (u.username, u.role, names[u.account_id], u.must_change_password)
            for u in admin.users(session)
            if u.account_id in names
        ]
        return people, accounts_seen


async def users_page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.USERS_MANAGE)
    people, choices = await offload(request, _users, request.app[SESSIONS], principal)
    return render(
        request, "users.html", status, people=people, accounts=choices, roles=admin.ROLES, **shown
    )


def _change_user(
    sessions: sessionmaker[Session],
    principal: Principal,
    form: dict[str, str],
    invite: Callable[[str, str], None] | None,
) -> str:
    """Carries out one form of the users page; returns what to tell the admin. `invite` mails
    a link to an address (when mail is configured)."""
    action, username = form.get("action", ""), form.get("username", "")[:200]
    actor = principal.actor
    with sessions.begin() as session:
        if action == "add":
            role, account = form.get("role", ""), form.get("account", "")
            if not whole(account):
                raise admin.AdminError("choose an account")
            may_manage(principal, int(account), role)
            password = new_password()
            email = form.get("email") or None
            user = admin.add_user(session, username, password, role, int(account), actor, email)
            if invite is not None and user.email:
                token = accounts.issue_link(session, user, "invite")
                invite(user.email, token)  # a mail that fails undoes the whole addition
                return f"User {username} added and invited by mail to {user.email}."
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
    mailer, base = request.app[MAILER], request.app[BASE_URL]

    def invite(address: str, token: str) -> None:
        words = (
            f"{principal.username} invites you to the call tracking appliance.\n\n"
            f"Your user name: {form.get('username', '')[:200]}\n"
            f"Choose your password within three days here:\n{base}/link/{token}\n"
        )
        try:
            mailer.send(Mail(address, "Your call tracking appliance user", words))
        except MailError as exc:
            raise admin.AdminError(f"the invitation could not be mailed: {exc}") from None

    try:
        said = await offload(
            request,
            _change_user,
            request.app[SESSIONS],
            principal,
            form,
            invite if mailer.enabled else None,
        )
    except admin.AdminError as exc:
        return await users_page(request, 400, error=str(exc))
    return await users_page(request, notice=said)


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
        if before_text and not whole(before_text):
            raise audit_log.BadFilter("before: an entry number")
    except audit_log.BadFilter as exc:
        raise Refused(400, str(exc)) from None
    before = int(before_text) if before_text else None
    rows, after = await offload(
        request, _audit_page, request.app[SESSIONS], principal, wanted, before
    )
    kept = {k: v for k, v in request.query.items() if k != "before" and v}
    zone = await offload(request, account_zone, request.app[SESSIONS], principal)
    return render(
        request,
        "audit.html",
        rows=rows,
        query=kept,
        zone=zone_named(zone),
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
    with sessions.begin() as session:
        rows = (
            {c: getattr(e, c) for c in AUDIT_COLUMNS}
            for e in audit_log.every(session, principal, wanted)
        )
        text, count = csv_text(AUDIT_COLUMNS, rows)
        audit.record(
            session,
            principal.actor,
            "audit.export",
            client=client,
            detail=f"{count} entries",
            account_id=principal.account_id,
        )
    return text


async def audit_csv(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.AUDIT_READ)
    try:
        wanted = audit_log.parse_filter(request.query)
    except audit_log.BadFilter as exc:
        raise Refused(400, str(exc)) from None
    async with request.app[EXPORTS]:
        text = await offload(
            request, _audit_csv, request.app[SESSIONS], principal, wanted, request.remote
        )
    return csv_response(text, "audit.csv")


# white label -------------------------------------------------------------------------------
def _brand(sessions: sessionmaker[Session], principal: Principal) -> brand.Brand:
    with sessions() as session:
        return brand.brand_for(session, principal.account_id)


async def brand_css(request: web.Request) -> web.Response:
    found = request.get(BRAND) or brand.Brand()
    return web.Response(
        text=brand.stylesheet(found),
        content_type="text/css",
        headers={"Cache-Control": "private, no-cache"},
    )


def _logo(sessions: sessionmaker[Session], principal: Principal) -> tuple[bytes, str] | None:
    with sessions() as session:
        agency = brand.agency_of(session, principal.account_id)
        if agency is None or agency.brand_logo is None or agency.brand_logo_type is None:
            return None
        return agency.brand_logo, agency.brand_logo_type


async def brand_logo(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    found = await offload(request, _logo, request.app[SESSIONS], principal)
    if found is None:
        raise Refused(404, "no logo")
    data, kind = found
    return web.Response(
        body=data, content_type=kind, headers={"Cache-Control": "private, max-age=300"}
    )


async def settings_page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_WRITE)
    current = await offload(request, _brand, request.app[SESSIONS], principal)
    kept = await offload(request, retention.accounts_of, request.app[SESSIONS], principal)
    return render(
        request, "settings.html", status, brand=current, retention=kept, labels=LABELS, **shown
    )


def _save_brand(
    sessions: sessionmaker[Session],
    principal: Principal,
    fields: dict[str, str],
    logo: bytes | None,
) -> None:
    with sessions.begin() as session:
        agency = brand.agency_of(session, principal.account_id)
        if agency is None or agency.id != principal.account_id:
            raise Denied("only the agency's users set its brand")
        brand.set_brand(
            session,
            agency,
            fields.get("name", ""),
            fields.get("colour", ""),
            logo,
            principal.actor,
            remove_logo=fields.get("remove_logo") == "yes",
        )


async def settings_change(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_WRITE)
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    upload = form.get("logo")
    logo = upload.file.read(brand.LOGO_MAX + 1) if isinstance(upload, FileField) else None
    try:
        await offload(request, _save_brand, request.app[SESSIONS], principal, fields, logo or None)
    except brand.BrandRejected as exc:
        return await settings_page(request, 400, error=str(exc).capitalize() + ".")
    return await settings_page(request, notice="Saved.")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/brand.css", brand_css)
    app.router.add_get("/brand/logo", brand_logo)
    app.router.add_get("/settings", settings_page)
    app.router.add_post("/settings", settings_change)
    retention.add_routes(app, settings_page)
    app.router.add_get("/users", users_page)
    app.router.add_post("/users", users_change)
    app.router.add_get("/audit", audit_entries)
    app.router.add_get("/audit.csv", audit_csv)
