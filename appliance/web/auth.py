"""Who is asking: an API token under /api, a browser session cookie elsewhere, either of them on
/metrics. Forms that change anything carry the session's CSRF token; sign-in attempts are
throttled per client network."""

from __future__ import annotations

import asyncio
import urllib.parse

from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from appliance import accounts
from appliance.access import Principal
from appliance.asterisk.registrations import Registrations
from appliance.mail import Mailer
from appliance.ratelimit import Buckets, client_key
from appliance.secrets import SecretBox
from appliance.web.hardening import Handler, Refused
from appliance.web.keys import BRAND, PRINCIPAL, SESSION
from appliance.web.monitoring import PATH as METRICS_PATH
from appliance.web.offload import offload

COOKIE = "__Host-appliance"
SESSIONS: web.AppKey[sessionmaker[Session]] = web.AppKey("sessions", sessionmaker)
PUBLIC = ("/login", "/health", "/static/", "/reset", "/link/", "/brand.css")
BOX: web.AppKey[SecretBox] = web.AppKey("box", SecretBox)  # seals TOTP secrets
MAILER: web.AppKey[Mailer] = web.AppKey("mailer", Mailer)
MAILING: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("mailing", set)  # mails going out
REGISTRATIONS: web.AppKey[Registrations] = web.AppKey("registrations", Registrations)
BASE_URL: web.AppKey[str] = web.AppKey("base_url", str)  # what mailed links start with
SAFE = ("GET", "HEAD", "OPTIONS")
# pages a user who must change the password may still open
WHILE_TEMPORARY = ("/password", "/logout", "/static/")
CODE_PAGE = "/login/code"  # the second step of signing in


def _public(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC)


async def bearer(request: web.Request) -> Principal | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not 0 < len(token) <= 200:
        return None
    return await offload(request, accounts.token_user, request.app[SESSIONS], token)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    scrape = request.path == METRICS_PATH
    if request.path.startswith("/api/") or (scrape and "Authorization" in request.headers):
        principal = await bearer(request)
        if principal is None:
            raise _token_required()
        request[PRINCIPAL] = principal
        return await handler(request)
    token = request.cookies.get(COOKIE, "")
    found = await _signed_in(request, token)
    if request.method not in SAFE:
        await _check_form(request, token if found else None)
    _admit(request, found, scrape)
    return await handler(request)


def _token_required() -> Refused:
    return Refused(401, "a valid API token is required", headers={"WWW-Authenticate": "Bearer"})


async def _signed_in(request: web.Request, token: str) -> accounts.SessionState | None:
    """The browser session the cookie names, noted on the request (and who it is, once its
    sign-in is complete)."""
    if not 0 < len(token) <= 100:
        return None
    found = await offload(request, accounts.session_user, request.app[SESSIONS], token)
    if found is not None:
        request[SESSION] = token
        if found.verified:
            request[PRINCIPAL] = found.principal
            request[BRAND] = found.brand
    return found


def _admit(request: web.Request, found: accounts.SessionState | None, scrape: bool) -> None:
    """Return when the request may go on to its page; raise where it goes instead (the code
    page, the sign-in page, the password page) or its refusal."""
    if found is not None and not found.verified:  # the password was right; the code is due
        if request.path in (CODE_PAGE, "/logout") or request.path.startswith("/static/"):
            return
        raise web.HTTPSeeOther(CODE_PAGE)
    if _public(request.path):
        return
    if found is None:
        if scrape:  # a machine's request: no sign-in page for it
            raise _token_required()
        if request.method in SAFE:
            raise web.HTTPSeeOther("/login?" + urllib.parse.urlencode({"next": request.path_qs}))
        raise Refused(401, "sign in first")
    if found.must_change_password and not request.path.startswith(WHILE_TEMPORARY):
        raise web.HTTPSeeOther("/password")


async def _check_form(request: web.Request, session_token: str | None) -> None:
    """A state-changing request must come from the appliance's own pages: the browser says so
    (Sec-Fetch-Site, Origin), and a signed-in browser also sends its session's CSRF token."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site is not None:  # current browsers say it; it holds behind a TLS proxy too
        foreign = site != "same-origin"
    else:
        foreign = origin is not None and origin != f"{request.scheme}://{request.host}"
    if foreign:
        raise Refused(403, "this form was sent from another site")
    if session_token is None:
        return
    form = await request.post()
    sent = form.get("csrf")
    if not isinstance(sent, str) or not accounts.csrf_ok(session_token, sent):
        raise Refused(403, "this form has expired; reload the page and send it again")


def local_path(target: str | None, default: str = "/calls") -> str:
    """Where to go after signing in: only a path on this appliance."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in target):  # browsers drop tabs: "/\t/x"
        return default
    return target


def set_session_cookie(response: web.StreamResponse, token: str) -> None:
    response.set_cookie(COOKIE, token, path="/", secure=True, httponly=True, samesite="Strict")


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")


class Throttle:
    """At most `burst` sign-in attempts a client network (an IPv4 address, an IPv6 /64: one
    host may use a whole /64) at once, one more every `refill` seconds; and no more than
    `concurrent` password or code checks at a time, so a flood cannot take the CPUs."""

    def __init__(self, burst: int = 10, refill: float = 20.0, concurrent: int = 1) -> None:
        self.buckets = Buckets(burst, refill)
        self.checks = asyncio.Semaphore(concurrent)

    def allow(self, client: str | None) -> bool:
        return self.buckets.allow(client_key(client))


THROTTLE: web.AppKey[Throttle] = web.AppKey("throttle", Throttle)
