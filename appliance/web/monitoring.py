"""GET /metrics: the appliance's Prometheus metrics (appliance/metrics.py).

They describe the whole box, every client account together, so only a principal of the
agency with metrics:read may read them: an API token with that scope of an owner or admin,
or such a user signed in. Anyone else is refused (and audited) as the API refuses."""

from __future__ import annotations

from aiohttp import web

from appliance.access import Denied, Permission, Principal
from appliance.metrics import CONTENT_TYPE, Metrics
from appliance.web.keys import PRINCIPAL
from appliance.web.offload import offload

PATH = "/metrics"
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


async def scrape(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.METRICS_READ)
    if not principal.agency:  # client accounts never hold it; checked again all the same
        raise Denied("the appliance's metrics are for its administrators")
    metrics = request.app[METRICS]
    metrics.observe_live()
    body = await offload(request, metrics.exposition)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application, metrics: Metrics) -> None:
    app[METRICS] = metrics
    app.router.add_get(PATH, scrape)
