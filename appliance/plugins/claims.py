"""Which routes plugins decide (claims_route): those are compiled with the dynamic FastAGI
step; every other route stays compiled and AGI-free. Asked once per route (again when its
name or account changes), not at every routing refresh; an answer missing because a plugin
failed or timed out is asked again at the next refresh. Blocking: off the event loop."""

from __future__ import annotations

from appliance.calls.model import RoutingTable
from appliance.calls.routing import RoutePlan
from appliance.plugins.manager import PluginManager


class RouteClaims:
    def __init__(self, plugins: PluginManager) -> None:
        self.plugins = plugins
        self.known: dict[tuple[int, str, int], bool] = {}

    def __call__(self, table: RoutingTable) -> frozenset[int]:
        if not self.plugins.implemented("claims_route"):
            return frozenset()
        return frozenset(plan.id for plan in table.routes.values() if self.claimed(plan))

    def claimed(self, plan: RoutePlan) -> bool:
        key = (plan.id, plan.name, plan.account_id)
        if key in self.known:
            return self.known[key]
        route = {"id": plan.id, "name": plan.name, "account_id": plan.account_id}
        results = self.plugins.call("claims_route", route=route)
        claimed = any(value is True for _, value in results)
        if claimed or len(results) == len(self.plugins.implementations("claims_route")):
            self.known[key] = claimed
        return claimed
