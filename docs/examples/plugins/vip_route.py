"""Example plugin: callers on a VIP list who call a number of the "Sales" route are put
through to the "VIP" route of the same account instead, tagged "vip", with a channel
variable the VIP route's phones can show. Copy it into the drop-in directory
(/etc/appliance/plugins.d, owned by root, mode 0644) and restart the controller."""

from appliance.plugins import hookimpl

DECIDES = {"Sales"}  # the routes whose calls this plugin decides
VIP_ROUTE = "VIP"  # where VIP callers go (a route of the call's own account)
VIP_CALLERS = {"13125550111"}  # caller numbers, digits only

route_ids: dict[tuple[int, str], int] = {}  # (account id, route name) -> route id


def digits(text: str | None) -> str:
    return "".join(ch for ch in text or "" if ch.isdigit())


@hookimpl
def claims_route(route):
    route_ids[(route["account_id"], route["name"])] = route["id"]
    return route["name"] in DECIDES


@hookimpl
def call_started(call, deciding):
    if not deciding or digits(call["caller_number"]) not in VIP_CALLERS:
        return None
    vip = route_ids.get((call["account_id"], VIP_ROUTE))
    if vip is None:
        return None
    return {"route": vip, "tags": ["vip"], "variables": {"VIP_LEVEL": "gold"}}
