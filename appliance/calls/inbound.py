"""The 'inbound' FastAGI script: DID -> tracking number -> route. No I/O on the way to the
answer: routing reads an in-memory table, and the call writer records the call afterwards."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import replace

from appliance.asterisk.agi_protocol import AgiRequest
from appliance.calls.routing import Decision, InvalidRoute, channel_variables, decide
from appliance.calls.schedule import InvalidSchedule
from appliance.calls.store import CallOpened, InboundCall, RoutingTable, call_id_for
from appliance.calls.writer import CallWriter
from appliance.numbers import dialled_to_e164

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def printable(text: str, limit: int) -> str:
    """Caller ID is attacker-controlled: keep printable characters, bounded length."""
    return "".join(ch for ch in text if ch.isprintable())[:limit]


def inbound_call(request: AgiRequest) -> InboundCall:
    dnid = request.args[0] if request.args else request.get("extension")
    linkedid = request.args[1] if len(request.args) > 1 else request.get("uniqueid")
    return InboundCall(
        linkedid=printable(linkedid, 64),
        dialled=printable(dnid, 64),
        caller_number=printable(request.get("callerid"), 64),
        caller_name=printable(request.get("calleridname"), 128),
    )


class InboundHandler:
    def __init__(
        self, writer: CallWriter, table: Callable[[], RoutingTable], clock: Clock = utc_now
    ) -> None:
        self.writer = writer
        self.table = table
        self.clock = clock

    async def __call__(self, request: AgiRequest) -> dict[str, str]:
        call = inbound_call(request)
        if not call.linkedid:
            log.warning("inbound AGI request without a channel id; left to the fallback")
            return {}
        table = self.table()
        info = table.numbers.get(dialled_to_e164(call.dialled) or "")
        try:
            decision = decide(info.plan if info else None, self.clock(), table.default)
        except (InvalidRoute, InvalidSchedule) as exc:
            log.error("route for %s is broken (%s); using the fallback", call.dialled, exc)
            decision = Decision(dials=())
        if decision.record and info is not None and info.recording_paused:
            log.warning(
                "call to %s not recorded: the account's recording storage is full", call.dialled
            )
            decision = replace(decision, record=False)
        call_id = call_id_for(call.linkedid)
        route, after_hours = decision.route_name, decision.after_hours
        self.writer.submit(
            CallOpened(call, call_id, info, route, after_hours, bool(decision.dials))
        )
        log.info(
            "call %s to %s from %s: %s%s",
            call_id,
            call.dialled,
            call.caller_number,
            decision.route_name or "fallback",
            " (after hours)" if decision.after_hours else "",
        )
        return channel_variables(decision, call_id)
