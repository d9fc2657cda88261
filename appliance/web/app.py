"""The aiohttp application: health endpoint and the admin pages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
import jinja2
from aiohttp import web

from appliance import __version__
from appliance.resources import shipped_dir

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CHECKS: web.AppKey[dict[str, Callable[[], object]]] = web.AppKey("checks", dict)
Counters = Callable[[], dict[str, int]]
COUNTERS: web.AppKey[Counters] = web.AppKey("counters")


async def run_checks(app: web.Application) -> dict[str, bool]:
    results: dict[str, bool] = {}
    for name, check in app[CHECKS].items():
        try:
            outcome = check()
            if asyncio.iscoroutine(outcome):
                outcome = await asyncio.wait_for(outcome, 2.0)
            results[name] = bool(outcome)
        except Exception:
            results[name] = False
    return results


async def health(request: web.Request) -> web.Response:
    checks = await run_checks(request.app)
    healthy = all(checks.values())
    body = {
        "status": "ok" if healthy else "degraded",
        "version": __version__,
        "checks": checks,
        "counters": request.app[COUNTERS](),
    }
    return web.json_response(body, status=200 if healthy else 503)


@aiohttp_jinja2.template("status.html")
async def index(request: web.Request) -> dict[str, object]:
    return {"checks": await run_checks(request.app), "version": __version__}


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'")
    return response


def init_app(checks: dict[str, Callable[[], object]], counters: Counters = dict) -> web.Application:
    """`checks` say whether each feature works; `counters` (what happened since start) let
    operators and tests follow the controller without reading its log."""
    app = web.Application(middlewares=[security_headers], client_max_size=1024**2)
    app[CHECKS] = checks
    app[COUNTERS] = counters
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(shipped_dir("web") / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    app.router.add_get("/health", health)
    app.router.add_get("/", index)
    return app
