"""The 'inbound' FastAGI script: DID -> tracking number -> route, and the call record."""

from __future__ import annotations

import asyncio
import logging

from appliance.asterisk.agi_protocol import AgiRequest
from appliance.calls import variables as var
from appliance.calls.routing import InvalidTarget, decide
from appliance.calls.store import CallStore, InboundCall
from appliance.numbers import dialled_to_e164

log = logging.getLogger(__name__)


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
    def __init__(self, store: CallStore) -> None:
        self.store = store

    async def __call__(self, request: AgiRequest) -> dict[str, str]:
        call = inbound_call(request)
        if not call.linkedid:
            log.warning("inbound AGI request without a channel id; left to the fallback")
            return {}
        return await asyncio.to_thread(self._route, call)

    def _route(self, call: InboundCall) -> dict[str, str]:
        info = self.store.lookup(dialled_to_e164(call.dialled))
        try:
            decision = decide(info.plan if info else None)
        except InvalidTarget as exc:
            log.error("route for %s is broken (%s); using the fallback", call.dialled, exc)
            decision = decide(None)
        call_id = self.store.open_call(call, info, decision.route_name)
        log.info(
            "call %s to %s from %s: %s",
            call_id,
            call.dialled,
            call.caller_number,
            decision.route_name or "fallback",
        )
        answer = {var.CALL_ID: call_id}
        if decision.dial:
            answer[var.DIAL] = decision.dial
            answer[var.RING_TIMEOUT] = str(decision.ring_timeout)
        return answer
