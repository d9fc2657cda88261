"""`tag,<tags>[,call id]`, `score,<points>[,call id]` and `note,<text>[,call id]`: what an
integrator's dialplan puts on the current call (or a given one). calls/annotations.py checks
each value; a refused one sets APPLIANCE_STATUS and writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from appliance.asterisk.agi_protocol import AgiRequest
from appliance.asterisk.fastagi import AgiChannel
from appliance.calls import variables as var
from appliance.calls.annotations import AnnotationError
from appliance.integrator import args, context, facts

T = TypeVar("T")


async def tag(
    services: context.Services, request: AgiRequest, channel: AgiChannel
) -> dict[str, str]:
    words, given = args.split_call(request.args)  # 'vip,sales' arrives as two arguments
    call_id = await context.call_id(services, channel, given)
    tags = await _refusing("bad-tags", facts.tag, services.sessions, call_id, ",".join(words))
    return {var.TAGS: ",".join(tags)}


async def score(
    services: context.Services, request: AgiRequest, channel: AgiChannel
) -> dict[str, str]:
    given = args.at_most(request, 2)
    if not given:
        raise args.Refused("bad-score", "no points given")
    call_id = await context.call_id(services, channel, given[1] if len(given) > 1 else None)
    now = await _refusing("bad-score", facts.score, services.sessions, call_id, given[0])
    return {var.SCORE: "" if now is None else str(now)}


async def note(
    services: context.Services, request: AgiRequest, channel: AgiChannel
) -> dict[str, str]:
    parts, given = args.split_call(request.args)  # Asterisk splits a note at its commas
    call_id = await context.call_id(services, channel, given)
    note_id = await _refusing("bad-note", facts.note, services.sessions, call_id, ", ".join(parts))
    return {var.NOTE_ID: str(note_id)}


async def _refusing(reason: str, write: Callable[..., T], *params: object) -> T:
    try:
        return await asyncio.to_thread(write, *params)
    except AnnotationError as exc:
        raise args.Refused("no-call" if str(exc) == "no such call" else reason, str(exc)) from None
