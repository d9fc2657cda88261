"""The Plugins page (/plugins): the controller's plugins, where each comes from, the hooks it
implements, whether it loaded (or why it was refused) and its failures since start. Owners
and admins of the agency only: plugins are the box's own code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from appliance.access import Denied, Permission, Principal
from appliance.web.keys import PRINCIPAL
from appliance.web.render import render

PATH = "/plugins"
Listing = Callable[[], list[dict[str, Any]]]
PLUGINS: web.AppKey[Listing] = web.AppKey("plugins", Callable)  # type: ignore[arg-type]


async def plugins_page(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.USERS_MANAGE)
    if not principal.agency:
        raise Denied("plugins are for the appliance's administrators")
    return render(request, "plugins.html", plugins=request.app[PLUGINS]())


def add_routes(app: web.Application, plugins: Listing | None) -> None:
    app[PLUGINS] = plugins or list
    app.router.add_get(PATH, plugins_page)
