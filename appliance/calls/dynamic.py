"""The FastAGI script 'dynamic', the step of dynamic routes: a route marked dynamic, or
claimed by a plugin, asks here at call time. The plugins' call_started (deciding) answers,
within the plugin timeout; the built-in routing decision (calls/routing.py, the same the
compiled route makes) is the last answer and the fallback. The answer names one of the
compiled routes of the call's own account, never a dial string, so even a forged answer
cannot dial anything the admin did not configure; the ready flag goes last, so a partial
answer is never taken."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from appliance.asterisk.agi_protocol import AgiRequest
from appliance.asterisk.fastagi import AgiChannel
from appliance.calls import variables as var
from appliance.calls.model import RoutingTable
from appliance.calls.routing import RoutePlan
from appliance.numbers import dialled_to_e164
from appliance.plugins import builtin, checks
from appliance.plugins.manager import PluginManager, Result
from appliance.plugins.sites import Decided
from appliance.privacy.restrict import caller_forms

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


class DynamicRoute:
    def __init__(
        self,
        table: Callable[[], RoutingTable],
        plugins: PluginManager | None = None,
        decided: Decided | None = None,
        clock: Clock = builtin.utc_now,
    ) -> None:
        self.table = table
        self.decided = decided or Decided()
        if plugins is None:
            plugins = PluginManager()
            plugins.add_builtin(builtin.Routing(table, clock), builtin.NAME)
        self.plugins = plugins
        self._forms: tuple[RoutingTable | None, dict[int, frozenset[str]]] = (None, {})

    async def __call__(self, request: AgiRequest, channel: AgiChannel) -> dict[str, str]:
        route_id = request.args[0] if request.args else ""
        known = route_id.isascii() and route_id.isdigit() and len(route_id) < 10
        table = self.table()
        plan = table.routes.get(int(route_id)) if known else None
        if plan is None:
            log.warning("dynamic route %r unknown; the compiled route takes the call", route_id)
            return {}
        call = self.call_data(request, plan, table)
        results = await self.plugins.acall("call_started", call=call, deciding=True)
        allowed = {r.id for r in table.routes.values() if r.account_id == plan.account_id}
        chosen, after_hours, variables, tags = self.choose(results, allowed)
        self.decided.remember(call["linkedid"], tags)
        if chosen is None:
            return {}
        return {
            **variables,
            var.CONNECT: str(chosen),
            var.AFTER_HOURS: "yes" if after_hours else "",
            var.READY: "1",  # last: the dialplan takes nothing without it
        }

    def choose(
        self, results: list[Result], allowed: set[int]
    ) -> tuple[int | None, bool, dict[str, str], list[tuple[str, tuple[str, ...]]]]:
        """The first valid route answer wins (the built-in one comes last); every plugin's
        valid variables (the first to name one wins) and tags are taken."""
        chosen: int | None = None
        after_hours = False
        variables: dict[str, str] = {}
        tags: list[tuple[str, tuple[str, ...]]] = []
        for name, value in results:
            if name == builtin.NAME:
                if chosen is None and value is not None:
                    chosen, after_hours = value["route"], value["after_hours"]
                continue
            try:
                answer = checks.route_answer(value, allowed)
            except checks.PluginValueError as exc:
                self.plugins.invalid(name, "call_started", str(exc))
                continue
            if chosen is None and answer.route is not None:
                chosen = answer.route
            variables = answer.variables | variables
            if answer.tags:
                tags.append((f"plugin:{name}", answer.tags))
        return chosen, after_hours, variables, tags

    def call_data(
        self, request: AgiRequest, plan: RoutePlan, table: RoutingTable
    ) -> dict[str, Any]:
        """What is known of the call before its record exists: the AGI request's headers
        (caller-controlled text, bounded) and the routing table."""
        linkedid = _text(request.args[1] if len(request.args) > 1 else request.get("uniqueid"))
        caller = _text(request.get("callerid"))
        dialled = _text(request.get("dnid"))
        e164 = dialled_to_e164(dialled) or dialled
        number = next((n for n in table.numbers if n.e164 == e164), None)
        return {
            "call_id": None,
            "linkedid": linkedid,
            "account_id": plan.account_id or None,
            "caller_number": caller,
            "caller_name": _text(request.get("calleridname")),
            "dialled": e164,
            "number_id": number.id if number else None,
            "route_id": plan.id,
            "route_name": plan.name,
            "source": None,
            "medium": None,
            "campaign": None,
            "after_hours": False,
            "restricted": self.restricted(table, plan.account_id, caller),
            "started_at": dt.datetime.now(dt.UTC).isoformat(),
            "answered_at": None,
            "ended_at": None,
            "disposition": None,
            "talk_seconds": None,
            "ring_seconds": None,
        }

    def restricted(self, table: RoutingTable, account_id: int, caller: str) -> bool:
        if self._forms[0] is not table:
            self._forms = (table, {})
        forms = self._forms[1]
        if account_id not in forms:
            listed = table.restricted.get(account_id, ())
            forms[account_id] = frozenset(f for e164 in listed for f in caller_forms(e164))
        digits = "".join(ch for ch in caller if ch.isascii() and ch.isdigit())
        return bool(digits) and digits in forms[account_id]


def _text(value: str, limit: int = 128) -> str:
    return "".join(ch for ch in value if ch.isprintable())[:limit]
