"""What every AGI script is given: the database, the call writer and follower, the routing
table; and the call a script acts on."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.asterisk.fastagi import AgiChannel
from appliance.calls.follow import CallFollower
from appliance.calls.model import RoutingTable
from appliance.calls.writer import CallWriter
from appliance.integrator import args, facts


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Services:
    sessions: facts.Sessions
    writer: CallWriter
    calls: CallFollower
    table: Callable[[], RoutingTable]
    clock: Callable[[], dt.datetime] = field(default=utc_now)


async def linkedid(channel: AgiChannel) -> str:
    """The call's linkedid, asked of the channel (one call, however many legs)."""
    return args.linkedid(await channel.get_full_variable("${CHANNEL(linkedid)}"))


async def call_id(services: Services, channel: AgiChannel, given: str | None) -> str:
    """The call a script acts on: `given` (any call on this box, by its id), else the
    current call, which `track` or the appliance's inbound context must have recorded."""
    if given:
        wanted = args.call_id(given)
        if not await asyncio.to_thread(facts.exists, services.sessions, wanted):
            raise args.Refused("no-call", f"no call {wanted}")
        return wanted
    found = await asyncio.to_thread(facts.call_of, services.sessions, await linkedid(channel))
    if found is None:
        raise args.Refused("not-tracked", "the current call has no record yet (run track first)")
    return found
