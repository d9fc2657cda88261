"""What every response carries, errors included: security headers, no software version, and
errors as one clear message (JSON under /api, a page elsewhere) with nothing internal in them.
Refused requests are written to the audit log (refusals.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web, web_response

from appliance.access import Denied
from appliance.web import monitoring
from appliance.web.refusals import REFUSALS
from appliance.web.render import render

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on forms
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = "max-age=63072000"
CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    416: "range_not_satisfiable",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}
AUDITED = (401, 403, 404, 405, 429)
PASSED_ON = ("WWW-Authenticate", "Content-Range", "Allow", "Retry-After")


class Refused(Exception):
    """A request the appliance will not serve, with the message its user reads."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def secure_headers(
    tls: bool,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    # aiohttp's own answers to requests it cannot parse never reach this hook: they take the
    # Server header from this module global, so it names no software version either
    web_response.SERVER_SOFTWARE = "appliance"

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        for name, value in HEADERS.items():
            headers.setdefault(name, value)
        headers["Server"] = "appliance"
        if request.path.startswith("/static/"):
            headers.setdefault("Cache-Control", "private, max-age=3600")
        else:
            headers.setdefault("Cache-Control", "no-store")
        if tls:
            headers["Strict-Transport-Security"] = HSTS

    return on_prepare


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as exc:
        status, message, headers = exc.status, exc.message, exc.headers
    except Denied as exc:
        status, message, headers = 403, f"not allowed: {exc}", {}
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status, message = exc.status, exc.reason
        headers = {k: v for k, v in exc.headers.items() if k in PASSED_ON}
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path[:200])
        status, message, headers = 500, "something went wrong; the appliance log has details", {}
    if status in AUDITED:
        await request.app[REFUSALS].note(request, status, message)
    return error_response(request, status, message, headers)


def error_response(
    request: web.Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.StreamResponse:
    code = CODES.get(status, "error")
    if request.path.startswith("/api/") or request.path in ("/health", monitoring.PATH):
        body = {"error": {"code": code, "message": message}}
        return web.json_response(body, status=status, headers=headers)
    response = render(request, "error.html", status, code=status, message=message)
    response.headers.update(headers or {})
    return response
