"""`route[,number]`: where the appliance would send a call to a tracking number now (its
route, business hours and after-hours chain), without taking the call over: the integrator's
dialplan dials it itself. The dial string comes from the same builder as the compiled
routes (calls/routing.connect), so it holds only what an admin configured."""

from __future__ import annotations

from appliance.asterisk.agi_protocol import AgiRequest
from appliance.asterisk.fastagi import AgiChannel
from appliance.calls import variables as var
from appliance.calls.routing import InvalidRoute, connect, decide
from appliance.integrator import args, context
from appliance.numbers import dialled_to_e164


async def route(
    services: context.Services, request: AgiRequest, channel: AgiChannel
) -> dict[str, str]:
    args.at_most(request, 1)
    dialled = args.number(request)
    table = services.table()
    e164 = dialled_to_e164(dialled) or dialled
    number = next((n for n in table.numbers if n.e164 == e164), None)
    decision = decide(table.entry(number), services.clock())
    if decision.route is None:
        raise args.Refused("no-route", f"no route for {e164} and no default route")
    try:
        plan = connect(decision.route)
    except InvalidRoute as exc:
        raise args.Refused("no-route", str(exc)) from None
    if not plan.dials:
        raise args.Refused("no-route", f"route {plan.route_id} has no target")
    return {
        var.CONNECT: str(plan.route_id),
        var.DIAL: plan.dials[0],
        var.RING_TIMEOUT: str(plan.ring_timeout),
        var.AFTER_HOURS: "yes" if decision.after_hours else "",
    }
