"""Signing in and out: the password, the optional TOTP code, the forced password change, and
the user's own settings."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from appliance import accounts, totp
from appliance.access import Principal
from appliance.db.models import User
from appliance.mail import Mail, Mailer, MailError
from appliance.web.auth import (
    BASE_URL,
    BOX,
    CODE_PAGE,
    MAILER,
    MAILING,
    SESSIONS,
    THROTTLE,
    clear_session_cookie,
    local_path,
    set_session_cookie,
)
from appliance.web.hardening import Refused
from appliance.web.keys import PRINCIPAL, SESSION
from appliance.web.offload import offload
from appliance.web.render import render, see_other

log = logging.getLogger(__name__)


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
        signed = await offload(
            request, accounts.sign_in, request.app[SESSIONS], username, password[:1000], client
        )
    if signed is None:
        return render(
            request,
            "login.html",
            status=401,
            next=target,
            username=username[:200],
            error="Wrong user name or password, or too many wrong ones from here for now.",
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
    async with throttle.checks:
        token = await offload(
            request,
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


def _has_totp(sessions: sessionmaker[Session], user_id: int) -> bool:
    with sessions() as session:
        user = session.get(User, user_id)
        return user is not None and user.totp_sealed is not None


async def settings_page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    enabled = await offload(request, _has_totp, request.app[SESSIONS], principal.user_id)
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
            await offload(
                request,
                accounts.set_totp,
                request.app[SESSIONS],
                request.app[BOX],
                principal.user_id,
                form.get("password", ""),
                secret,
                form.get("code", ""),
                request.remote,
                request[SESSION],
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
        await offload(request, accounts.sign_out, request.app[SESSIONS], token, request.remote)
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
                token = await offload(
                    request,
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


# links mailed to set a password -------------------------------------------------------------
async def reset_form(request: web.Request) -> web.Response:
    return render(request, "reset.html", mail=request.app[MAILER].enabled)


async def reset(request: web.Request) -> web.Response:
    form = await request.post()
    client = request.remote or "?"
    if not request.app[THROTTLE].allow(client):
        raise Refused(429, "too many attempts; wait a minute and try again", {"Retry-After": "60"})
    mailer = request.app[MAILER]
    if mailer.enabled:
        found = await offload(
            request, accounts.reset_request, request.app[SESSIONS], str(form.get("who", "")), client
        )
        if found is not None:
            address, token = found
            link = f"{request.app[BASE_URL]}/link/{token}"
            words = (
                "Someone asked to reset the password of your call tracking appliance user.\n\n"
                f"To choose a new password, open this link within an hour:\n{link}\n\n"
                "If it was not you, ignore this mail: your password stays as it is."
            )
            # mailed in the background: how long the answer takes tells nothing
            mail = Mail(address, "Reset your password", words)
            task = asyncio.create_task(_mail(request, mailer, mail))
            request.app[MAILING].add(task)
            task.add_done_callback(request.app[MAILING].discard)
    return render(request, "reset.html", mail=mailer.enabled, sent=True)


async def _mail(request: web.Request, mailer: Mailer, mail: Mail) -> None:
    try:
        await offload(request, mailer.send, mail)
    except MailError as exc:
        log.warning("password reset link not mailed: %s", exc)


async def link_form(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    username = None
    if 0 < len(token) <= 100:
        username = await offload(request, accounts.link_user, request.app[SESSIONS], token)
    if username is None:
        raise Refused(404, "this link is used up or has expired; ask for a new one")
    return render(request, "link.html", username=username)


async def link(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    form = await request.post()
    new, again = (str(form.get(k, ""))[:1000] for k in ("new", "again"))
    username = await offload(request, accounts.link_user, request.app[SESSIONS], token[:100])
    if username is None:
        raise Refused(404, "this link is used up or has expired; ask for a new one")
    error = "The two passwords differ." if new != again else None
    if error is None:
        try:
            async with request.app[THROTTLE].checks:
                fresh = await offload(
                    request, accounts.use_link, request.app[SESSIONS], token, new, request.remote
                )
        except accounts.PasswordRejected as exc:
            error = str(exc).capitalize() + "."
        else:
            if fresh is None:
                raise Refused(404, "this link is used up or has expired; ask for a new one")
            response = see_other(f"{CODE_PAGE}?next=/calls" if fresh.needs_code else "/calls")
            set_session_cookie(response, fresh.token)
            return response
    return render(request, "link.html", status=400, username=username, error=error)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/reset", reset_form)
    app.router.add_post("/reset", reset)
    app.router.add_get("/link/{token}", link_form)
    app.router.add_post("/link/{token}", link)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get(CODE_PAGE, code_form)
    app.router.add_post(CODE_PAGE, code)
    app.router.add_get("/account", settings_page)
    app.router.add_post("/account", settings_change)
    app.router.add_get("/password", password_form)
    app.router.add_post("/password", password)
