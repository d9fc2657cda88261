"""`lookup[,call id]`: attribution and lead data of the current call (or a given one), for
whispers, screen pops and IVR decisions."""

from __future__ import annotations

import asyncio

from appliance.asterisk.agi_protocol import AgiRequest
from appliance.asterisk.fastagi import AgiChannel
from appliance.calls import variables as var
from appliance.integrator import args, context, facts
from appliance.integrator.track import variables as tracked_variables


async def lookup(
    services: context.Services, request: AgiRequest, channel: AgiChannel
) -> dict[str, str]:
    given = args.at_most(request, 1)
    call_id = await context.call_id(services, channel, given[0] if given else None)
    found = await asyncio.to_thread(facts.lookup, services.sessions, call_id)
    if found is None:
        raise args.Refused("no-call", f"call {call_id} is gone")
    record, details = found
    return {**tracked_variables(record), **variables(details)}


def variables(details: facts.Details) -> dict[str, str]:
    return {
        var.KEYWORD: args.inert(details.keyword),
        var.CLICK_ID_TYPE: args.inert(details.click_id_type),
        var.LANDING_PAGE: args.inert(details.landing_page),
        var.TAGS: ",".join(details.tags),  # tags are a-z, 0-9, '-' and '_' only
        var.SCORE: "" if details.score is None else str(details.score),
        var.LEAD_FORM: args.inert(details.lead_form),
        var.LEAD_EMAIL: args.inert(details.lead_email),
        var.LEAD_NAME: args.inert(details.lead_name),
    }
