"""The call state machine fed by AMI events. Pure: events in, finished calls out.

Why these events: Newchannel tells who called which number and when; the dialplan's
UserEvent ApplianceRoute says which tracking number and route it took (the call starts: its
record is written with a new random call id); DialBegin/DialEnd give ring time, each attempt's
status and which destination answered (the answer is written at once; BridgeEnter tells it
when DialEnd did not); HangupRequest says who hung up first; Hangup gives the
cause and, once every channel of a linkedid is gone, the end of the call; UserEvent
ApplianceConsent says which recording notice was played, when, and whether the caller opted
out (consent evidence), ApplianceRecording that a recording started. A call is keyed by its
linkedid, so one record per call whatever the number of legs; repeated events change
nothing, and a call already finished ignores late events.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from appliance.calls import variables as var
from appliance.calls.model import CallAnswered, CallStarted, CallWrite, parse_id
from appliance.calls.outcome import CallOutcome, disposition
from appliance.calls.routing import SOUND
from appliance.vocabulary import new_call_id

FINISHED_MEMORY = 10_000


@dataclass
class _Call:
    linkedid: str
    started: float
    channel: str = ""
    dialled: str = ""
    caller_number: str = ""
    caller_name: str = ""
    alive: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    dial_strings: dict[str, str] = field(default_factory=dict)
    dial_ends: set[str] = field(default_factory=set)
    dial_statuses: list[str] = field(default_factory=list)
    ring_started: float | None = None
    answered: float | None = None
    answered_by: str | None = None
    first_hangup_request: str | None = None
    hangup_cause: int | None = None
    ended: float | None = None
    consent_announced: bool = False
    recording_opted_out: bool = False
    consent_prompt: str | None = None
    consent_at: float | None = None
    number_id: int | None = None
    route_id: int | None = None
    after_hours: bool = False
    recording_mode: str = ""
    recording_on: bool = False
    restricted: bool = False  # the dialplan found the caller on the account's restrict list
    ours: bool = False  # the appliance's call: its route event came, or `track` adopted it


LATEST = 2**33  # seconds: the year 2242; a Timestamp beyond (or not finite) is not a time


def _timestamp(event: Mapping[str, str]) -> float:
    try:
        moment = float(event["Timestamp"])
    except (KeyError, ValueError):
        return time.time()
    return moment if 0 <= moment < LATEST else time.time()


def _single(event: Mapping[str, object]) -> dict[str, str]:
    """The event's headers that came once: panoramisk makes a list of a repeated header's
    values, and no header the tracker reads is ever repeated by Asterisk."""
    return {name: value for name, value in event.items() if isinstance(value, str)}


def _clean(value: str | None, limit: int = 128) -> str:
    if not value or value == "<unknown>":
        return ""
    return "".join(ch for ch in value if ch.isprintable())[:limit]


def _sound(value: str | None) -> str | None:
    """The notice's sound name as the route gave it (routing.sound's pattern), else None."""
    text = value or ""
    return text if SOUND.fullmatch(text) else None


@dataclass(frozen=True)
class LiveCall:
    channel: str  # the caller's channel
    route_id: int | None
    recording_mode: str
    opted_out: bool
    recording: bool
    connected: bool  # answered by a destination: the caller is in the bridge
    restricted: bool = False  # the caller is on the restrict list: never recorded


@dataclass(frozen=True)
class InProgress:
    """A call going on now, as the live calls page shows it."""

    linkedid: str
    started: float  # epoch seconds
    caller_number: str
    caller_name: str
    dialled: str
    answered: float | None
    recording: bool


class CallTracker:
    def __init__(self, only_ours: bool = False) -> None:
        """`only_ours`: attached to a site's PBX, the calls in progress shown are only those
        the appliance tracks (not the site's internal or outgoing calls)."""
        self.calls: dict[str, _Call] = {}
        self.finished: OrderedDict[str, None] = OrderedDict()
        self.only_ours = only_ours

    def feed(self, event: Mapping[str, str]) -> CallWrite | None:
        """Apply one AMI event; return what to record: the call's start, its answer, or its
        outcome."""
        event = _single(event)
        linkedid = event.get("Linkedid") or ""
        uniqueid = event.get("Uniqueid") or ""
        name = event.get("Event", "")
        if not linkedid or not uniqueid or linkedid in self.finished:
            return None
        handler = getattr(self, f"_on_{name.lower()}", None)
        if handler is None:
            return None
        call = self.calls.get(linkedid)
        if call is None:
            call = self.calls[linkedid] = _Call(linkedid=linkedid, started=_timestamp(event))
        written = handler(call, event, uniqueid)
        return self._finish(call) if name == "Hangup" else written

    def live(self, linkedid: str) -> LiveCall | None:
        """What is known of a call in progress (for actions on the live call)."""
        call = self.calls.get(linkedid)
        if call is None or not call.channel:
            return None
        return LiveCall(
            channel=call.channel,
            route_id=call.route_id,
            recording_mode=call.recording_mode,
            opted_out=call.recording_opted_out,
            recording=call.recording_on,
            connected=call.answered is not None,
            restricted=call.restricted,
        )

    def started(self, linkedid: str) -> float | None:
        """When a call in progress started (None: not seen, e.g. it began before AMI was up)."""
        call = self.calls.get(linkedid)
        return call.started if call is not None and call.channel else None

    def adopt(self, linkedid: str, number_id: int | None, dialled: str) -> None:
        """A call an integrator's dialplan tracks (AGI script `track`): its tracking number, so
        that its outcome goes to the record `track` wrote, like the call of any route."""
        call = self.calls.get(linkedid)
        if call is not None and linkedid not in self.finished:
            call.ours = True
            call.number_id = call.number_id or number_id
            call.dialled = _clean(dialled, 64) or call.dialled

    def in_progress(self) -> list[InProgress]:
        """Every call not ended yet, the oldest first."""
        return sorted(
            (
                InProgress(
                    linkedid=c.linkedid,
                    started=c.started,
                    caller_number=c.caller_number,
                    caller_name=c.caller_name,
                    dialled=c.dialled,
                    answered=c.answered,
                    recording=c.recording_on,
                )
                for c in self.calls.values()
                if c.ended is None and c.channel and (c.ours or not self.only_ours)
            ),
            key=lambda c: c.started,
        )

    # events --------------------------------------------------------------------------
    def _on_newchannel(self, call: _Call, event: Mapping[str, str], uniqueid: str) -> None:
        if uniqueid in call.gone:
            return
        call.alive.add(uniqueid)
        if uniqueid == call.linkedid:
            call.channel = event.get("Channel", "")
            call.started = min(call.started, _timestamp(event))
            call.dialled = _clean(event.get("Exten"), 64)
            call.caller_number = _clean(event.get("CallerIDNum"), 64)
            call.caller_name = _clean(event.get("CallerIDName"))

    def _on_userevent(
        self, call: _Call, event: Mapping[str, str], uniqueid: str
    ) -> CallStarted | None:
        kind = event.get("UserEvent")
        if kind == var.EVENT_CONSENT:
            call.consent_announced = True
            call.recording_opted_out = event.get("OptedOut") == "yes"
            call.consent_prompt = _sound(event.get("Prompt"))
            call.consent_at = _timestamp(event)
        elif kind == var.EVENT_RECORDING and event.get("State") == "started":
            call.recording_on = True
        elif kind == var.EVENT_ROUTE and uniqueid == call.linkedid:
            return self._route(call, event)
        return None

    def _route(self, call: _Call, event: Mapping[str, str]) -> CallStarted | None:
        first = call.route_id is None
        call.ours = True
        call.route_id = parse_id(event.get("Route"))
        call.number_id = parse_id(event.get("Number"))
        call.after_hours = event.get("AfterHours") == "yes"
        call.recording_mode = _clean(event.get("Recording"), 16)
        call.restricted = call.restricted or event.get("Restricted") == "1"
        call.dialled = _clean(event.get("Dialled"), 64) or call.dialled
        if not first:
            return None
        return CallStarted(
            linkedid=call.linkedid,
            call_id=new_call_id(),
            dialled=call.dialled,
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            started=call.started,
            number_id=call.number_id,
            route_id=call.route_id,
            after_hours=call.after_hours,
            restricted=call.restricted,
        )

    def _on_dialbegin(self, call: _Call, event: Mapping[str, str], uniqueid: str) -> None:
        dest = event.get("DestUniqueid", "")
        if dest:
            if dest not in call.gone:
                call.alive.add(dest)
            call.dial_strings[dest] = _clean(event.get("DialString"))
        if call.ring_started is None:
            call.ring_started = _timestamp(event)

    def _on_dialend(
        self, call: _Call, event: Mapping[str, str], uniqueid: str
    ) -> CallAnswered | None:
        status = event.get("DialStatus", "")
        dest = event.get("DestUniqueid", "")
        if dest in call.dial_ends:  # a repeated event
            return None
        call.dial_ends.add(dest)
        call.dial_statuses.append(status)
        if status == "ANSWER" and call.answered is None:
            return self._answer(call, _timestamp(event), dest)
        return None

    def _on_bridgeenter(
        self, call: _Call, event: Mapping[str, str], uniqueid: str
    ) -> CallAnswered | None:
        if uniqueid != call.linkedid and call.answered is None and call.ring_started is not None:
            return self._answer(call, _timestamp(event), uniqueid)
        return None

    def _answer(self, call: _Call, moment: float, dest: str) -> CallAnswered:
        """The answer, once per call (it is written at once: webhooks, plugins)."""
        call.answered = moment
        call.answered_by = call.dial_strings.get(dest) or None
        return CallAnswered(call.linkedid, moment)

    def _on_hanguprequest(self, call: _Call, event: Mapping[str, str], uniqueid: str) -> None:
        if call.first_hangup_request is None:
            call.first_hangup_request = uniqueid

    def _on_hangup(self, call: _Call, event: Mapping[str, str], uniqueid: str) -> None:
        call.alive.discard(uniqueid)
        call.gone.add(uniqueid)
        if uniqueid == call.linkedid:
            cause = event.get("Cause", "")  # Q.850: 0 to 127, a few digits in ASCII
            call.hangup_cause = (
                int(cause) if cause.isascii() and cause.isdigit() and len(cause) < 4 else None
            )
            call.ended = _timestamp(event)

    # ending --------------------------------------------------------------------------
    def _finish(self, call: _Call) -> CallOutcome | None:
        if call.alive or call.linkedid not in call.gone:
            return None
        del self.calls[call.linkedid]
        self.finished[call.linkedid] = None
        while len(self.finished) > FINISHED_MEMORY:
            self.finished.popitem(last=False)
        if not call.channel:
            # Joined late (the controller started, or AMI came back, during the call): what
            # was seen is the end only, not when it was answered. Asterisk's CDR has all of
            # it, and reconciliation records the call from there.
            return None
        ended = call.ended if call.ended is not None else call.started
        requester = call.first_hangup_request
        caller_first = requester == call.linkedid
        party = None if requester is None else ("caller" if caller_first else "callee")
        answered = call.answered is not None
        return CallOutcome(
            linkedid=call.linkedid,
            dialled=call.dialled,
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            started=call.started,
            ended=ended,
            answered=call.answered,
            ring_started=call.ring_started,
            disposition=disposition(
                answered, call.dial_statuses, caller_gave_up=caller_first and not answered
            ),
            hangup_cause=call.hangup_cause,
            hangup_party=party or "system",
            answered_by=call.answered_by,
            consent_announced=call.consent_announced,
            recording_opted_out=call.recording_opted_out,
            consent_prompt=call.consent_prompt,
            consent_at=call.consent_at,
            number_id=call.number_id,
            route_id=call.route_id,
            after_hours=call.after_hours,
        )
