"""The FastAGI script 'dynamic', asked only by routes marked dynamic: the seam where integrator
hooks and plugins will decide a call at call time. Today it answers what the compiled route
would (calls/routing.py decides both). The answer names one of the compiled routes, never a
dial string, so even a forged answer cannot dial anything the admin did not configure; the
ready flag goes last, so a partial answer is never taken."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from appliance.asterisk.agi_protocol import AgiRequest
from appliance.asterisk.fastagi import AgiChannel
from appliance.calls import variables as var
from appliance.calls.model import RoutingTable
from appliance.calls.routing import decide

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DynamicRoute:
    def __init__(self, table: Callable[[], RoutingTable], clock: Clock = utc_now) -> None:
        self.table = table
        self.clock = clock

    async def __call__(self, request: AgiRequest, channel: AgiChannel) -> dict[str, str]:
        route_id = request.args[0] if request.args else ""
        known = route_id.isascii() and route_id.isdigit() and len(route_id) < 10
        plan = self.table().routes.get(int(route_id)) if known else None
        if plan is None:
            log.warning("dynamic route %r unknown; the compiled route takes the call", route_id)
            return {}
        decision = decide(plan, self.clock())
        if decision.route is None:
            return {}
        return {
            var.CONNECT: str(decision.route.id),
            var.AFTER_HOURS: "yes" if decision.after_hours else "",
            var.READY: "1",  # last: the dialplan takes nothing without it
        }
