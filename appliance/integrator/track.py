"""`track[,number]`: start tracking a call that did not come through the appliance's inbound
context. Its record is written now, under the call's linkedid, and the AMI follower finishes
it like any other call; a second `track` of the same call finds the same record."""

from __future__ import annotations

import asyncio
import time

from appliance.asterisk.agi_protocol import AgiRequest
from appliance.asterisk.fastagi import AgiChannel
from appliance.calls import variables as var
from appliance.calls.model import CallStarted
from appliance.integrator import args, context, facts
from appliance.vocabulary import new_call_id


async def track(
    services: context.Services, request: AgiRequest, channel: AgiChannel
) -> dict[str, str]:
    args.at_most(request, 1)
    dialled = args.number(request)
    linkedid = await context.linkedid(channel)
    started = CallStarted(
        linkedid=linkedid,
        call_id=new_call_id(),
        dialled=dialled,
        caller_number=args.inert(request.get("callerid"), 64),
        caller_name=args.inert(request.get("calleridname"), 128),
        started=services.calls.started(linkedid) or time.time(),
        number_id=None,  # the record finds the number from the dialled one
        route_id=None,
        after_hours=False,
    )
    (call_id,) = await services.writer.write([started])
    if call_id is None:
        raise args.Refused("no-call", "the call's record was not written")
    found = await asyncio.to_thread(facts.tracked, services.sessions, call_id)
    if found is None:  # erased in between
        raise args.Refused("no-call", f"call {call_id} is gone")
    services.calls.adopt(linkedid, found.number_id, found.dialled)
    return variables(found)


def variables(found: facts.Tracked) -> dict[str, str]:
    return {
        var.CALL_ID: found.call_id,
        var.NUMBER: str(found.number_id or 0),
        var.DNID: args.inert(found.dialled, 64),
        var.SOURCE: args.inert(found.source),
        var.MEDIUM: args.inert(found.medium),
        var.CAMPAIGN: args.inert(found.campaign),
        var.ATTRIBUTION: args.inert(found.attribution),
        var.VISIT: args.inert(found.visit_id),
        var.FIRST_TIME: args.flag(found.first_time),
    }
