"""Who the client is, once for every request of the admin app: behind a trusted reverse proxy
(http.trusted_proxies) the address X-Forwarded-For names, from anyone else the peer's
(forwarded.client_address, the tracking listener's rule too).

The handlers see it as `request.remote`: the sign-in throttle and lock, the audit log, the
sessions and the refusal log all read that one address, and none reads the header itself."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from appliance.forwarded import Proxies, client_address
from appliance.web.hardening import Handler


def real_client(proxies: Proxies) -> Middleware:
    """The middleware, first of all: every later one sees the client's address."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.remote is not None:
            forwarded = request.headers.getall("X-Forwarded-For", []) if proxies else []
            address = client_address(request.remote, forwarded, proxies)
            if address != request.remote:
                request = request.clone(remote=address)
        return await handler(request)

    return middleware
