"""The public tracking endpoints: the only listener meant for the internet. It serves the
website snippet and two JSON endpoints, nothing of the admin UI or the API.

    GET  /t/v1/snippet.js   the script a site adds to its pages
    POST /t/v1/number       {site, visitor, url, referrer, beat, consent} -> the number to show
    POST /t/v1/lead         {site, visitor, form, url, fields, consent} -> 204

Bodies are JSON sent as text/plain, so browsers send them without a CORS preflight (one is
answered anyway). Each request is checked: its size, its site, its Origin against the site's
origins, its page against its Origin, every field's type and size; each client address has a
budget of requests and of new visits. Do Not Track and Global Privacy Control are honoured,
and a site that requires consent gets no tracking without it."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from appliance.attribution.dni import HEARTBEAT, Answer, Dni, Refusal, SiteConfig
from appliance.attribution.leads import clean_fields
from appliance.attribution.touch import BadInput, web_address
from appliance.config import TrackingConfig
from appliance.forwarded import client_address, parse_proxies
from appliance.ratelimit import Buckets, client_key
from appliance.resources import shipped_dir

log = logging.getLogger(__name__)
DNI: web.AppKey[Dni] = web.AppKey("dni", Dni)
LIMITS: web.AppKey[Limits] = web.AppKey("limits")
SNIPPET: web.AppKey[bytes] = web.AppKey("snippet", bytes)
MAX_BODY = 16 * 1024
KEY = re.compile(r"[A-Za-z0-9_-]{10,40}")
VISITOR = re.compile(r"[0-9a-f]{32}")


class Limits:
    """The budgets of each client (an IPv4 address or an IPv6 /64), and who it is."""

    def __init__(self, config: TrackingConfig) -> None:
        self.requests = Buckets(config.requests_per_minute, 60 / config.requests_per_minute)
        hourly = config.new_visits_per_hour
        self.visits = Buckets(max(1, min(10, hourly // 6)), 3600 / hourly)
        self.leads = Buckets(5, 60.0)
        self.proxies = parse_proxies(config.trusted_proxies)
        self.timeout = config.timeout  # seconds a request body may take to arrive

    def client(self, request: web.Request) -> str:
        """The visitor's address: the peer's, or behind a trusted proxy the last address
        X-Forwarded-For names that is not one of the proxies."""
        forwarded = request.headers.getall("X-Forwarded-For", [])
        return client_address(request.remote, forwarded, self.proxies)


def _headers(response: web.StreamResponse) -> None:
    response.headers["Server"] = "appliance"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Content-Security-Policy", "default-src 'none'")
    response.headers["Vary"] = "Origin"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every answer, refusals and aiohttp's own errors included, gets the same headers; the
    budget of each client address is spent before anything is read."""
    limits = request.app[LIMITS]
    if request.method == "POST" and not limits.requests.allow(client_key(limits.client(request))):
        response: web.StreamResponse = _error(429, "too many requests from this address")
    else:
        try:
            response = await handler(request)
        except Refusal as refused:
            response = _error(refused.status, str(refused))
        except BadInput as bad:
            response = _error(400, str(bad))
        except web.HTTPRequestEntityTooLarge:
            response = _error(413, f"a request is at most {MAX_BODY} bytes")
        except web.HTTPException as exc:
            response = _error(exc.status, exc.reason)
        except Exception:  # a bug: a plain 500, the usual headers, the details in the log
            log.exception("tracking request failed")
            response = _error(500, "internal error")
    _headers(response)
    return response


async def _body(request: web.Request) -> dict[str, object]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    try:
        async with asyncio.timeout(request.app[LIMITS].timeout):
            raw = await request.read()
    except TimeoutError:
        raise Refusal(408, "the request body took too long") from None
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadInput("the body is not JSON in UTF-8 (or too deeply nested)") from None
    if not isinstance(body, dict):
        raise BadInput("the body is not a JSON object")
    return body


def _text(body: dict[str, object], name: str, pattern: re.Pattern[str]) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadInput(f"{name}: missing or malformed")
    return value


def _site_and_page(request: web.Request, body: dict[str, object]) -> tuple[SiteConfig, str]:
    origin = request.headers.get("Origin")
    config = request.app[DNI].site(_text(body, "site", KEY), origin)
    page = web_address(body.get("url"), "url")
    parts = urlsplit(page)
    if f"{parts.scheme}://{parts.netloc}".lower() != origin:
        raise Refusal(403, "url: not a page of the requesting origin")
    return config, page


def _declined(request: web.Request, body: dict[str, object], config: SiteConfig) -> bool:
    """No tracking: the browser asks not to be tracked, or the site needs consent first."""
    if request.headers.get("Sec-GPC") == "1" or request.headers.get("DNT") == "1":
        return True
    return config.consent_required and body.get("consent") is not True


def _answer(answer: Answer, origin: str) -> web.Response:
    response = web.json_response(
        {
            "number": answer.number,
            "replace": list(answer.replace),
            "forms": list(answer.forms),
            "tracking": answer.tracking,
            "heartbeat": HEARTBEAT,
        }
    )
    response.headers["Access-Control-Allow-Origin"] = origin
    return response


async def number(request: web.Request) -> web.Response:
    body = await _body(request)
    config, page = _site_and_page(request, body)
    origin = str(request.headers["Origin"])
    if _declined(request, body, config):
        return _answer(Answer(None, (), (), False), origin)
    referrer = body.get("referrer") or None
    if referrer is not None:
        referrer = web_address(referrer, "referrer")
    limits = request.app[LIMITS]
    client = limits.client(request)
    answer = request.app[DNI].visit(
        config,
        _text(body, "visitor", VISITOR),
        page,
        referrer,
        client,
        time.time(),
        beat=body.get("beat") is True,
        may_start=lambda: limits.visits.allow(client_key(client)),
    )
    return _answer(answer, origin)


async def lead(request: web.Request) -> web.Response:
    body = await _body(request)
    config, page = _site_and_page(request, body)
    origin = str(request.headers["Origin"])
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = origin
    if _declined(request, body, config):
        return response
    form = body.get("form")
    if not isinstance(form, str) or form not in config.forms:
        raise Refusal(403, "form: not one of the site's tracked forms")
    fields = clean_fields(body.get("fields"))
    visitor = _text(body, "visitor", VISITOR)
    limits = request.app[LIMITS]
    client = limits.client(request)
    if not limits.leads.allow(client_key(client)):
        raise Refusal(429, "too many leads from this address")
    request.app[DNI].lead(config, visitor, form, page, fields, client, time.time())
    return response


async def preflight(request: web.Request) -> web.Response:
    """For pages that send JSON as application/json: any site's origin may POST."""
    origin = request.headers.get("Origin")
    known = any(origin in s.config.origins for s in request.app[DNI].sites.values())
    response = web.Response(status=204)
    if known:
        response.headers["Access-Control-Allow-Origin"] = str(origin)
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "86400"
    return response


async def snippet(request: web.Request) -> web.Response:
    response = web.Response(
        body=request.app[SNIPPET],
        content_type="application/javascript",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )
    response.enable_compression()
    return response


def snippet_source() -> bytes:
    return (shipped_dir("web") / "tracking" / "snippet.js").read_bytes()


def tracking_app(dni: Dni, config: TrackingConfig) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    app[DNI] = dni
    app[LIMITS] = Limits(config)
    app[SNIPPET] = snippet_source()
    app.router.add_get("/t/v1/snippet.js", snippet)
    app.router.add_post("/t/v1/number", number)
    app.router.add_post("/t/v1/lead", lead)
    app.router.add_route("OPTIONS", "/t/v1/number", preflight)
    app.router.add_route("OPTIONS", "/t/v1/lead", preflight)
    return app
