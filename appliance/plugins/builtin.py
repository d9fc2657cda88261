"""The appliance's own behaviour on the plugin hooks: the routing decision (business hours,
after-hours routes; calls/routing.py) is the last implementation of call_started, so any
plugin's valid route answer comes first and this one is the fallback."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from appliance.calls.model import RoutingTable
from appliance.calls.routing import decide
from appliance.plugins.spec import hookimpl

NAME = "routing"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Routing:
    """call_started while deciding: the compiled route's own decision at this moment."""

    def __init__(
        self, table: Callable[[], RoutingTable], clock: Callable[[], dt.datetime] = utc_now
    ) -> None:
        self.table = table
        self.clock = clock

    @hookimpl(trylast=True)
    def call_started(self, call: dict[str, Any], deciding: bool) -> dict[str, Any] | None:
        if not deciding:
            return None
        plan = self.table().routes.get(call.get("route_id") or 0)
        if plan is None:
            return None
        decision = decide(plan, self.clock())
        if decision.route is None:
            return None
        return {"route": decision.route.id, "after_hours": decision.after_hours}
